using System.Text.Json.Nodes;
using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

/// <summary>SentencePiece-style byte-fallback BPE on a hand-made vocabulary, in both the legacy
/// (Prepend/Replace normalizer) and the Metaspace pre-tokenizer spelling.</summary>
public sealed class SentencePieceBpeTests
{
    private const int Bos = 1, Space = 259, A = 260, B = 261, C = 262, SpaceA = 263, Ab = 264, SpaceAb = 265;

    [Theory]
    [InlineData("ab a", new[] { Bos, SpaceAb, SpaceA })]
    [InlineData("c😀", new[] { Bos, Space, C, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3 })]
    [InlineData("", new[] { Bos })]
    [InlineData("  a", new[] { Bos, Space, Space, SpaceA })]
    public void LegacyNormalizerEncodesToKnownIds(string text, int[] expected)
    {
        TextTokenizer tokenizer = Load(Json());
        Assert.Equal(expected, tokenizer.Encode(text));
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text), skipSpecialTokens: true));
    }

    [Fact]
    public void MetaspacePreTokenizerMatchesLegacyAndPrependsOnlyFirst()
    {
        TextTokenizer legacy = Load(Json());
        TextTokenizer metaspace = Load(MetaspaceJson(split: false));
        foreach (string text in new[] { "ab a", "c😀 ab", "a  b", "" })
        {
            Assert.Equal(legacy.Encode(text), metaspace.Encode(text));
            Assert.Equal(text, metaspace.Decode(metaspace.Encode(text), skipSpecialTokens: true));
        }
        // prepend_scheme "first": text after an added token gets no "▁" (the legacy normalizer adds one).
        Assert.Equal(new[] { Bos, SpaceA, 2, Ab }, metaspace.Encode("a</s>ab"));
        Assert.Equal(new[] { Bos, SpaceA, 2, SpaceAb }, legacy.Encode("a</s>ab"));
        // split=true cuts before every "▁", so "▁" + "ab" still merge but words never join.
        Assert.Equal(new[] { Bos, SpaceAb, SpaceA }, Load(MetaspaceJson(split: true)).Encode("ab a"));
    }

    [Fact]
    public void PartlyMissingSplitMergesAreRejected()
    {
        JsonObject json = Json();
        RemoveMerge(json, "\u2581", "ab");
        Assert.Contains("'▁ab' = '▁' + 'ab' are all buildable tokens but that merge is missing", Fails(json));
    }

    [Fact]
    public void PieceWithoutMergesIsNeverBuilt()
    {
        // Older HF converters dropped every merge of some pieces; HF then never produces them.
        JsonObject json = Json();
        RemoveMerge(json, "\u2581", "ab");
        RemoveMerge(json, "\u2581a", "b");
        Assert.Equal(new[] { Bos, SpaceA, B }, Load(json).Encode("ab"));
        Assert.Equal(new[] { Bos, SpaceAb }, Load(Json()).Encode("ab"));
    }

    [Fact]
    public void MergesOfOnePieceMustBeAdjacent()
    {
        JsonObject json = Json();
        JsonArray merges = json["model"]!["merges"]!.AsArray();
        JsonNode last = merges[^1]!;
        merges.RemoveAt(merges.Count - 1);
        merges.Insert(0, last);
        Assert.Contains("merges making '▁ab' are not adjacent", Fails(json));
    }

    [Fact]
    public void PieceWithACharacterOutsideTheVocabIsNeverBuilt()
    {
        // HF turns "é" into byte tokens before merging, so the piece "éx" is unreachable; SentencePiece
        // on its own would merge the unknown "é" with "x".
        JsonObject json = Json();
        json["model"]!["vocab"]!["x"] = 266;
        json["model"]!["vocab"]!["éx"] = 267;
        Assert.Equal(new[] { Bos, Space, 0xC3 + 3, 0xA9 + 3, 266 }, Load(json).Encode("éx"));
    }

    [Fact]
    public void ByteTokensMustAllBePresent()
    {
        JsonObject json = Json();
        JsonObject vocab = json["model"]!["vocab"]!.AsObject();
        vocab.Remove("<0x41>");
        vocab["A"] = 3 + 0x41;
        Assert.Contains("<0x41> is not at id 68", Fails(json));
    }

    internal static JsonObject Json()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] pieces = ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = Space + i;
        string[][] merges = [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"], ["\u2581", "ab"]];
        return new JsonObject
        {
            ["added_tokens"] = new JsonArray(Special(0, "<unk>"), Special(1, "<s>"), Special(2, "</s>")),
            ["normalizer"] = JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"""),
            ["pre_tokenizer"] = null,
            ["post_processor"] = JsonNode.Parse("""{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}}"""),
            ["decoder"] = JsonNode.Parse("""{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["byte_fallback"] = true, ["fuse_unk"] = true, ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray()),
            },
        };
    }

    private static JsonObject MetaspaceJson(bool split)
    {
        JsonObject json = Json();
        json["normalizer"] = null;
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = split };
        json["decoder"] = JsonNode.Parse("""{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false},{"type":"ByteFallback"},{"type":"Fuse"}]}""");
        return json;
    }

    private static void RemoveMerge(JsonObject json, string left, string right)
    {
        JsonArray merges = json["model"]!["merges"]!.AsArray();
        merges.Remove(merges.First(m => m![0]!.GetValue<string>() == left && m[1]!.GetValue<string>() == right));
    }

    private static TextTokenizer Load(JsonObject json)
    {
        using var dir = new TempDirectory();
        return TinyByteLevelTokenizer.Load(dir, json);
    }

    private static string Fails(JsonObject json) => Assert.Throws<DllmException>(() => Load(json)).Message;

    private static JsonObject Special(int id, string content) =>
        new() { ["id"] = id, ["content"] = content, ["normalized"] = false, ["special"] = true };
}
