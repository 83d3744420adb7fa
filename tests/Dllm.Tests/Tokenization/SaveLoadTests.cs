using System.Text.Json.Nodes;
using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

public sealed class SaveLoadTests
{
    [SharedDataFact("stories260K/tok512.bin", "tinystories/sample.txt")]
    public void SaveThenLoadKeepsEncodingsAndJson()
    {
        TextTokenizer imported = Llama2cAssets.Imported!;
        using var first = new TempDirectory();
        using var second = new TempDirectory();
        imported.Save(first.Path);
        TextTokenizer loaded = TextTokenizer.Load(first.Path);
        loaded.Save(second.Path);

        foreach (string name in new[] { "tokenizer.json", "tokenizer_config.json" })
            Assert.True(JsonNode.DeepEquals(Json(first.File(name)), Json(second.File(name))), $"{name} changed on a load/save round trip");
        Assert.Equal(["tokenizer.json", "tokenizer_config.json"], Directory.GetFiles(first.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        foreach (string text in Llama2cAssets.Stories(50).Concat(Llama2cAssets.EdgeCases))
            Assert.Equal(imported.Encode(text), loaded.Encode(text));
        Assert.Equal((imported.VocabSize, imported.BosId, imported.EosId, imported.UnkId), (loaded.VocabSize, loaded.BosId, loaded.EosId, loaded.UnkId));
    }

    [SharedDataFact("stories260K/tok512.bin")]
    public void SaveKeepsFieldsItDoesNotUnderstand()
    {
        using var dir = new TempDirectory();
        Llama2cAssets.Imported!.Save(dir.Path);
        JsonObject config = Json(dir.File("tokenizer_config.json")).AsObject();
        config["model_max_length"] = 512;
        config["custom"] = new JsonObject { ["nested"] = new JsonArray(1, "two", null) };
        config["chat_template"] = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
        File.WriteAllText(dir.File("tokenizer_config.json"), config.ToJsonString());

        TextTokenizer loaded = TextTokenizer.Load(dir.Path).WithAddedSpecialToken("<|mask|>", out _);
        using var copy = new TempDirectory();
        loaded.Save(copy.Path);
        JsonObject saved = Json(copy.File("tokenizer_config.json")).AsObject();
        Assert.True(JsonNode.DeepEquals(config["custom"], saved["custom"]));
        Assert.Equal(512, saved["model_max_length"]!.GetValue<int>());
        Assert.Equal(loaded.ChatTemplate, saved["chat_template"]!.GetValue<string>());
    }

    [SharedDataFact("stories260K/tok512.bin")]
    public void AddedMaskTokenSurvivesSaveAndLoad()
    {
        TextTokenizer original = Llama2cAssets.Imported!;
        TextTokenizer withMask = original.WithAddedSpecialToken("<|mask|>", out int maskId);
        Assert.Equal(512, maskId);
        Assert.Equal(513, withMask.VocabSize);
        Assert.Equal(512, original.VocabSize); // the original is unchanged
        Assert.Null(original.TokenToId("<|mask|>"));

        using var dir = new TempDirectory();
        withMask.Save(dir.Path);
        TextTokenizer loaded = TextTokenizer.Load(dir.Path);
        Assert.Equal(maskId, loaded.TokenToId("<|mask|>"));
        Assert.Equal(maskId, loaded.MaskId);
        Assert.True(loaded.IsSpecial(maskId));

        IReadOnlyList<int> ids = loaded.Encode("Lily<|mask|> ran");
        Assert.Equal(1, ids.Count(id => id == maskId));
        Assert.Equal(original.Encode("Lily").Concat([maskId]).Concat(original.Encode(" ran", addSpecialTokens: false)), ids);
        // The text after an added token is normalised on its own, so it gets its own "▁" prefix: HF's legacy
        // Llama behaviour, hence two spaces.
        Assert.Equal("Lily  ran", loaded.Decode(ids, skipSpecialTokens: true));
        Assert.Equal("<s> Lily<|mask|>  ran", loaded.Decode(ids));

        // Adding it again, or re-adding an existing special token, keeps ids.
        Assert.Same(loaded, loaded.WithAddedSpecialToken("<|mask|>", out int again));
        Assert.Equal(maskId, again);
        loaded.WithAddedSpecialToken("</s>", out int eos);
        Assert.Equal(2, eos);
    }

    [SharedDataFact("stories260K/tok512.bin")]
    public void AddBosTokenFalseInConfigRemovesBos()
    {
        using var dir = new TempDirectory();
        Llama2cAssets.Imported!.Save(dir.Path);
        JsonObject config = Json(dir.File("tokenizer_config.json")).AsObject();
        config["add_bos_token"] = false;
        config["add_eos_token"] = true;
        File.WriteAllText(dir.File("tokenizer_config.json"), config.ToJsonString());
        // transformers' LlamaTokenizerFast rebuilds its post-processor from these flags.
        IReadOnlyList<int> ids = TextTokenizer.Load(dir.Path).Encode("Hello");
        Assert.NotEqual(1, ids[0]);
        Assert.Equal(2, ids[^1]);
    }

    private static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;
}
