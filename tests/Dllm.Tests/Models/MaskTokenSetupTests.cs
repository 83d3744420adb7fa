using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

public class MaskTokenSetupTests
{
    public MaskTokenSetupTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData("qwen2", 272)]   // the id fits in the existing (padded) table
    [InlineData("qwen2", 267)]   // the table must grow by one row (untied head grows too)
    [InlineData("llama", 267)]   // tied embeddings grow once
    public void AddsAMaskTokenWhoseRowsAreTheMeanOfKnownTokens(string arch, int vocab)
    {
        var json = TinyConfigs.Json(arch);
        json["vocab_size"] = vocab;
        var config = Dllm.Config.ModelConfigReader.Read(json.ToJsonString());
        var model = ModelFactory.Create(config, Dllm.Models.Layers.Placement.Cpu32);
        ModelInit.Randomize(model, 3, 0.2);
        var tokenizer = TinyCheckpoints.Tokenizer();
        Assert.Null(tokenizer.MaskId);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        var (grown, withMask) = MaskTokenSetup.Ensure(model, tokenizer);
        using var _ = grown;
        var id = grown.Config.MaskTokenId!.Value;
        Assert.Equal(267, id);                                   // the next free id of the tokenizer
        Assert.Equal(id, withMask.MaskId);
        Assert.Equal(Math.Max(vocab, 268), grown.Config.VocabSize);
        var known = before["model.embed_tokens.weight"].narrow(0, 0, 267);
        Assert.True((grown.Embeddings.Weight[id] - known.mean([0])).abs().max().item<float>() < 1e-6);
        // Every old row of every tensor is unchanged.
        foreach (var (name, value) in grown.state_dict())
        {
            var old = before[name];
            Assert.True(value.narrow(0, 0, Math.Min(old.shape[0], id)).eq(old.narrow(0, 0, Math.Min(old.shape[0], id))).all().item<bool>(), name);
        }
        if (!config.TieWordEmbeddings)
            Assert.True((grown.OutputWeight[id] - before["lm_head.weight"].narrow(0, 0, 267).mean([0])).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void TheMaskTokenSurvivesSaveAndLoad()
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write("ling", dir.File("ar"));
        using (var loaded = LoadedModel.Load(path))
        {
            Assert.Null(loaded.MaskTokenId);
            loaded.EnsureMaskToken();
            loaded.Save(dir.File("with-mask"));
        }
        using var again = LoadedModel.Load(dir.File("with-mask"));
        Assert.Equal(267, again.Model.Config.MaskTokenId);
        Assert.Equal(267, again.Tokenizer.MaskId);
        Assert.Equal(new[] { 267 }, again.Tokenizer.Encode("<|mask|>", addSpecialTokens: false));
    }
}
