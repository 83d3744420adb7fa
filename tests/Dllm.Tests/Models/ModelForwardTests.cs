using Dllm.Attention;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

public class ModelForwardTests
{
    public ModelForwardTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Archs => new(TinyConfigs.Architectures);

    private static Tensor Tokens(params long[] ids) => tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);

    [Theory]
    [MemberData(nameof(Archs))]
    public void IncrementalKvCacheDecodingMatchesFullForward(string arch)
    {
        using var model = TinyConfigs.Model(arch);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = new long[] { 5, 17, 3, 44, 9, 28, 60, 1, 33, 12 };
        var full = model.Forward(Tokens(ids));                       // [1, 10, V]

        using var cache = new KvCache(model.Config.NumLayers, initialCapacity: 2); // forces regrowth
        var pieces = new List<Tensor> { model.Forward(Tokens(ids[..4]), cache: cache) };
        for (var i = 4; i < 7; i++) pieces.Add(model.Forward(Tokens(ids[i]), cache: cache));
        pieces.Add(model.Forward(Tokens(ids[7..]), cache: cache));    // a multi-token chunk on top of the cache
        var incremental = cat(pieces.ToArray(), 1);

        Assert.Equal(10, cache.Length);
        var diff = (full - incremental).abs().max().item<float>();
        Assert.True(diff < 1e-4, $"{arch}: max |full - cached| = {diff}");
    }

    [Theory]
    [MemberData(nameof(Archs))]
    public void UncommittedForwardLeavesTheCacheAsItWas(string arch)
    {
        using var model = TinyConfigs.Model(arch);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Config.NumLayers);
        model.Forward(Tokens(5, 6, 7), cache: cache);
        model.Forward(Tokens(40, 41), cache: cache, commit: 0);      // a look-ahead that must not stick
        Assert.Equal(3, cache.Length);
        var next = model.Forward(Tokens(8), cache: cache);
        var full = model.Forward(Tokens(5, 6, 7, 8)).narrow(1, 3, 1);
        Assert.True((next - full).abs().max().item<float>() < 1e-4);
    }

    [Theory]
    [MemberData(nameof(Archs))]
    public void LeftPaddedBatchEqualsEachPromptAlone(string arch)
    {
        using var model = TinyConfigs.Model(arch);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long[] a = [7, 8, 9, 10, 11, 12], b = [20, 21, 22];
        const long pad = 0;
        var pads = new[] { 0L, a.Length - b.Length };
        var batch = tensor(a.Concat(Enumerable.Repeat(pad, (int)pads[1])).Concat(b).ToArray()).reshape(2, a.Length);
        var valid = batch.ne(-1).clone();
        valid[1, TensorIndex.Slice(0, pads[1])] = tensor(false);
        var positions = stack([arange(a.Length), (arange(a.Length) - pads[1]).clamp_min(0)]);
        var mask = AttentionMasks.WithPadding(AttentionMasks.Causal(a.Length), valid);
        var logits = model.Forward(batch, positions, mask);

        var aloneA = model.Forward(Tokens(a));
        var aloneB = model.Forward(Tokens(b));
        Assert.True((logits[0] - aloneA[0]).abs().max().item<float>() < 1e-4);
        Assert.True((logits[1].narrow(0, pads[1], b.Length) - aloneB[0]).abs().max().item<float>() < 1e-4);
    }

    [Theory]
    [MemberData(nameof(Archs))]
    public void LogitsForLastEqualsTheTailOfAllLogits(string arch)
    {
        using var model = TinyConfigs.Model(arch);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var all = model.Forward(Tokens(3, 4, 5, 6, 7));
        var tail = model.Forward(Tokens(3, 4, 5, 6, 7), logitsForLast: 2);
        Assert.Equal(new long[] { 1, 2, model.Config.VocabSize }, tail.shape);
        Assert.True((all.narrow(1, 3, 2) - tail).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void MaskChangesTheOutputSoItIsReallyUsed()
    {
        using var model = TinyConfigs.Model("llama");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = Tokens(3, 4, 5, 6);
        var causal = model.Forward(ids);
        var bidirectional = model.Forward(ids, mask: AttentionMasks.Bidirectional(4, 4));
        // Under a causal mask the first token sees only itself; bidirectionally it sees all four.
        var d0 = (causal[0, 0] - bidirectional[0, 0]).abs().max().item<float>();
        Assert.True(d0 > 1e-3, $"first-token logits moved by only {d0}");
    }
}
