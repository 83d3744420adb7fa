using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// Prefix reuse: a prompt that starts like an earlier one takes the stored keys and values of the shared whole chunks
/// and prefills only the rest, and decodes exactly what it decodes with no store. The store keeps to its capacity,
/// least recently used first, and frees every tensor.
/// </summary>
public class PrefixCacheTests
{
    private const int Mask = DecodeSessionTests.Mask;

    public PrefixCacheTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Kinds => new() { "ar", "diffusion", "shifted" };

    private static CausalLM Model(string kind) => DecodeSessionTests.Model(kind);

    private static DecodeSession Open(string kind, CausalLM model, PrefixCache? prefixes) => kind == "ar"
        ? new ArDecodeSession(model, [], prefixes: prefixes)
        : new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4), Mask, [], prefixes: prefixes);

    private static DecodedSequence Decode(string kind, CausalLM model, int[] prompt, PrefixCache? prefixes)
    {
        using var session = Open(kind, model, prefixes);
        session.Add(prompt, new DecodeOptions { MaxNewTokens = 9 });
        var steps = new List<DecodeStep>();
        while (session.Step() is { } step) steps.Add(step);
        return DecodeCollector.Collect(steps, 1)[0];
    }

    // A 40-token "system prompt", then three different tails: 19, 26 and 7 tokens.
    private static readonly int[] System = Enumerable.Range(0, 40).Select(i => 10 + i * 7 % 200).ToArray();
    private static readonly int[][] Prompts =
    [
        [.. System, .. Enumerable.Range(0, 19).Select(i => 60 + i)],
        [.. System, .. Enumerable.Range(0, 26).Select(i => 120 + i)],
        [.. System, .. Enumerable.Range(0, 7).Select(i => 200 + i)],
    ];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void PromptsSharingAPrefixDecodeWhatTheyDecodeWithoutTheStore(string kind)
    {
        using var model = Model(kind);
        var alone = Prompts.Select(p => Decode(kind, model, p, null)).ToArray();
        using var prefixes = new PrefixCache(1024);
        var reused = new List<long>();
        foreach (var (p, i) in Prompts.Select((p, i) => (p, i)))
        {
            var before = prefixes.ReusedTokens;
            var shared = Decode(kind, model, p, prefixes);
            Assert.Equal(alone[i].Tokens, shared.Tokens);
            Assert.Equal(alone[i].Finish, shared.Finish);
            reused.Add(prefixes.ReusedTokens - before);
        }
        // The first prompt finds nothing. The others share 40 tokens = two chunks of 16 (chunk 16 for AR and for
        // block 4); a block prompt prefills only its full blocks but the last, which the third (47 tokens: 44 in
        // full blocks, 40 before the last) still covers.
        Assert.Equal([0L, 32, 32], reused);
        Assert.True(prefixes.StoredTokens > 32);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void APromptThatRepeatsAnAnswerReusesTheAnswersChunks(string kind)
    {
        using var model = Model(kind);
        using var prefixes = new PrefixCache(1024);
        // 40 prompt tokens and 9 generated: the cache ends up holding 48 of them (AR: all but the last sampled token;
        // block 4: every block but the last window), three chunks of 16, the third half answer.
        var answer = Decode(kind, model, System, prefixes);
        Assert.Equal(48, prefixes.StoredTokens);
        int[] nextTurn = [.. System, .. answer.Tokens.Take(8), 7, 8, 9, 10, 11];
        var alone = Decode(kind, model, nextTurn, null);
        var before = prefixes.ReusedTokens;
        var shared = Decode(kind, model, nextTurn, prefixes);
        Assert.Equal(48, prefixes.ReusedTokens - before);
        Assert.Equal(alone.Tokens, shared.Tokens);
        if (kind != "ar") return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var full = model.Forward(tensor(nextTurn.Select(t => (long)t).ToArray()).unsqueeze(0), logitsForLast: 1).squeeze();
        using var cache = new KvCache(model.Config.NumLayers);
        Assert.Equal(48, prefixes.Load(nextTurn, nextTurn.Length - 1, 1, cache));
        var rest = tensor(nextTurn[48..].Select(t => (long)t).ToArray()).unsqueeze(0);
        var viaStore = model.Forward(rest, arange(48, nextTurn.Length).unsqueeze(0), null, cache, logitsForLast: 1).squeeze();
        Assert.True(full.allclose(viaStore, rtol: 1e-5, atol: 1e-5), $"max difference {(full - viaStore).abs().max().item<float>()}");
    }

    [Fact]
    public void AReusedPrefixGivesTheFirstTokenTheSameLogitsAsAFullPrefill()
    {
        using var model = Model("ar");
        using var prefixes = new PrefixCache(1024);
        var warm = Decode("ar", model, Prompts[0], prefixes);
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var full = model.Forward(tensor(Prompts[1].Select(t => (long)t).ToArray()).unsqueeze(0), logitsForLast: 1).squeeze();
            using var cache = new KvCache(model.Config.NumLayers);
            var reused = prefixes.Load(Prompts[1], Prompts[1].Length - 1, 1, cache);
            Assert.Equal(32, reused);
            var rest = tensor(Prompts[1][reused..].Select(t => (long)t).ToArray()).unsqueeze(0);
            var viaStore = model.Forward(rest, arange(reused, Prompts[1].Length).unsqueeze(0), null, cache, logitsForLast: 1).squeeze();
            Assert.True(full.allclose(viaStore, rtol: 1e-5, atol: 1e-5), $"max difference {(full - viaStore).abs().max().item<float>()}");
        }
        Assert.NotEmpty(warm.Tokens);
    }

    [Fact]
    public void TheStoreKeepsToItsCapacityLeastRecentlyUsedFirst()
    {
        using var model = Model("ar");
        using var prefixes = new PrefixCache(64);   // four chunks of 16
        // 36-token prompts: with the 8 answer tokens the cache holds (the last sampled one is never fed) a sequence
        // fills two chunks, so prompt and answer together store what the prompt alone does.
        int[] x = [.. Enumerable.Range(0, 36).Select(i => 20 + i)], y = [.. Enumerable.Range(0, 36).Select(i => 100 + i)];
        Decode("ar", model, x, prefixes);           // stores x's two whole chunks
        Decode("ar", model, y, prefixes);           // and y's: full
        Assert.Equal(64, prefixes.StoredTokens);
        Decode("ar", model, x, prefixes);           // x reused: now y is the least recently used
        Assert.Equal(32, prefixes.ReusedTokens);
        int[] z = [.. Enumerable.Range(0, 36).Select(i => 160 + i)];
        Decode("ar", model, z, prefixes);           // z's two chunks push y's out, tail first
        Assert.Equal(64, prefixes.StoredTokens);
        var before = prefixes.ReusedTokens;
        Decode("ar", model, y, prefixes);
        Assert.Equal(before, prefixes.ReusedTokens);   // y was evicted
        before = prefixes.ReusedTokens;
        Decode("ar", model, z, prefixes);
        Assert.Equal(before + 32, prefixes.ReusedTokens);
    }

    [Fact]
    public void ABlockSizesChunksAreNotReusedUnderAnotherBlockSize()
    {
        using var model = Model("diffusion");
        using var prefixes = new PrefixCache(1024);
        Decode("diffusion", model, Prompts[0], prefixes);
        using var cache = new KvCache(model.Config.NumLayers);
        Assert.Equal(0, prefixes.Load(Prompts[1], 48, 8, cache));   // stored under block 4
        Assert.Equal(0, cache.Length);
        Assert.Equal(32, prefixes.Load(Prompts[1], 48, 4, cache));
        Assert.Equal(32, cache.Length);
    }

    [Fact]
    public void TheStoreAndItsUsersLeaveNoTensorsBehind()
    {
        using var model = Model("diffusion");
        Decode("diffusion", model, Prompts[0], null);   // warm-up
        var baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var prefixes = new PrefixCache(48))
            foreach (var p in Prompts.Concat(Prompts)) Decode("diffusion", model, p, prefixes);
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void ANegativeCapacityIsRefused() =>
        Assert.Contains("0 (off) or more", Assert.Throws<DllmException>(() => new PrefixCache(-1)).Message);
}
