using Dllm.Config;
using Dllm.Evaluation;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.Evaluation;

public class EvaluatorTests
{
    public EvaluatorTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A model whose logits are all zero predicts uniformly: every token costs log V.</summary>
    private static CausalLM Uniform()
    {
        var model = TinyConfigs.Model("qwen2", seed: 1);
        using var noGrad = no_grad();
        model.OutputWeight.zero_();
        return model;
    }

    private static ScoredDocument Doc(int n, int seed) =>
        new(Enumerable.Range(0, n).Select(i => (i * 7 + seed) % 250).ToArray(), Enumerable.Repeat(true, n).ToArray());

    [Fact]
    public void UniformModelHasArNllOfLogVExactly()
    {
        using var model = Uniform();
        var r = ArNllEvaluator.Evaluate(model, [Doc(20, 1), Doc(9, 2)]);
        Assert.Equal(19 + 8, r.Tokens);                       // first token of each document is context only
        Assert.Equal(Math.Log(272), r.PerToken, 4);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(64)]
    public void UniformModelHasNelboOfLogVInExpectation(int blockSize)
    {
        // E[masked / t] = 1 per token, so the 1/t-weighted estimate of a log V cost is log V on average.
        using var model = Uniform();
        var docs = Enumerable.Range(0, 6).Select(i => Doc(40, i)).ToList();
        var r = NelboEvaluator.Evaluate(model, docs, blockSize, maskTokenId: 271, LabelPosition.Same, samples: 64, seed: 3);
        Assert.Equal(240, r.Tokens);
        Assert.Equal(6, r.Documents);
        Assert.InRange(r.PerToken / Math.Log(272), 0.93, 1.07);
    }

    [Fact]
    public void NelboIsReproducibleForASeedAndUnscoredTokensCostNothing()
    {
        using var model = TinyConfigs.Model("llama", seed: 3);
        var doc = Doc(30, 5);
        var a = NelboEvaluator.Evaluate(model, [doc], 8, 271, LabelPosition.Same, 4, seed: 9);
        var b = NelboEvaluator.Evaluate(model, [doc], 8, 271, LabelPosition.Same, 4, seed: 9);
        var c = NelboEvaluator.Evaluate(model, [doc], 8, 271, LabelPosition.Same, 4, seed: 10);
        Assert.Equal(a.PerToken, b.PerToken);
        Assert.NotEqual(a.PerToken, c.PerToken);
        var halfScored = doc with { Scored = doc.Scored.Select((_, i) => i >= 15).ToArray() };
        Assert.Equal(15, NelboEvaluator.Evaluate(model, [halfScored], 8, 271, LabelPosition.Same, 2, 9).Tokens);
    }

    [Fact]
    public void MergingAveragesEveryTensorOfTheChosenCheckpoints()
    {
        using var dir = new TempDirectory();
        var a = TinyCheckpoints.Write("ling", dir.File("a"), seed: 1);
        var b = TinyCheckpoints.Write("ling", dir.File("b"), seed: 2);
        CheckpointMerge.Merge([a, b], dir.File("merged"));
        using var ma = ModelLoader.Load(a);
        using var mb = ModelLoader.Load(b);
        using var merged = ModelLoader.Load(dir.File("merged"));
        var wa = ma.state_dict();
        var wb = mb.state_dict();
        foreach (var (name, value) in merged.state_dict())
        {
            var expected = (wa[name].to_type(ScalarType.Float64) + wb[name].to_type(ScalarType.Float64)) / 2;
            Assert.True(value.to_type(ScalarType.Float64).sub(expected).abs().max().item<double>() < 1e-7, name);
        }
    }

    [Fact]
    public void MergeSelectsTheBestCheckpointsByValidationMetric()
    {
        using var dir = new TempDirectory();
        var store = new CheckpointStore(dir.Path);
        using var model = TinyConfigs.Model("llama");
        var metrics = new double?[] { 3.0, 2.0, null, 2.5, 4.0 };
        for (var i = 0; i < metrics.Length; i++)
            store.Save((i + 1) * 10, model.Config, model.state_dict(), TinyCheckpoints.Tokenizer(), new System.Text.Json.Nodes.JsonObject(), [], metrics[i]);
        Assert.Equal(new long[] { 20, 40 }, CheckpointMerge.Select(store, 2).Select(c => c.Step));
        Assert.Contains("holds 4", Assert.Throws<DllmException>(() => CheckpointMerge.Select(store, 5)).Message);
        store.Prune(keepLast: 1, keepBest: 2);
        Assert.Equal(new long[] { 20, 40, 50 }, store.List().Select(c => c.Step));
        Assert.Equal(3, Directory.GetDirectories(store.Root).Length);
    }
}
