using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// Chunked prefill: a long prompt that arrives while another sequence decodes is prefilled a chunk per step, so the
/// running sequence keeps getting tokens every step, and both decode exactly what they decode alone. Prompts that
/// arrive together share one prefill forward (as many as the chunk allows, of similar lengths) and decode as they do alone.
/// </summary>
public class ChunkedPrefillTests
{
    private const int Mask = DecodeSessionTests.Mask;

    public ChunkedPrefillTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Kinds => new() { "ar", "diffusion", "shifted", "reference" };

    private static CausalLM Model(string kind) => DecodeSessionTests.Model(kind);

    private static DecodeSession Open(string kind, CausalLM model, int chunk, DecodeProfile? profile = null) => kind switch
    {
        "ar" => new ArDecodeSession(model, [], profile: profile) { PrefillChunk = chunk },
        "reference" => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4, UseCache: false), Mask, [], profile: profile) { PrefillChunk = chunk },
        _ => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4), Mask, [], profile: profile) { PrefillChunk = chunk },
    };

    private static readonly int[] Short = [5, 6, 7];
    private static readonly int[] Long = Enumerable.Range(0, 70).Select(i => 20 + i * 3 % 150).ToArray();
    private static readonly DecodeOptions Options = new() { MaxNewTokens = 30 };

    private static DecodedSequence Alone(string kind, CausalLM model, int[] prompt)
    {
        using var session = Open(kind, model, 0);
        session.Add(prompt, Options);
        var steps = new List<DecodeStep>();
        while (session.Step() is { } step) steps.Add(step);
        return DecodeCollector.Collect(steps, 1)[0];
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ALongPromptIsPrefilledAChunkPerStepWhileTheBatchDecodes(string kind)
    {
        using var model = Model(kind);
        var (shortAlone, longAlone) = (Alone(kind, model, Short), Alone(kind, model, Long));

        using var session = Open(kind, model, chunk: 8);
        session.Add(Short, Options);
        var steps = new List<DecodeStep> { session.Step()!, session.Step()! };
        session.Add(Long, Options);   // arrives while the short one decodes
        while (session.Step() is { } step) steps.Add(step);
        var results = DecodeCollector.Collect(steps, 2);

        Assert.Equal(shortAlone.Tokens, results[0].Tokens);
        Assert.Equal(longAlone.Tokens, results[1].Tokens);
        Assert.All(steps, s => Assert.InRange(s.Prefilled, 0, 8));
        if (kind == "reference")
        {
            // Recomputing decoders keep no cache, so there is nothing to prefill.
            Assert.All(steps, s => Assert.Equal(0, s.Prefilled));
            return;
        }
        // The prompts' contexts: AR prefills every token (3 + 70, the short one at once in the first step); block 4
        // the full blocks but the last (none of the short prompt; 64 of the long one's 68). The long one took several
        // steps, and the short sequence got tokens in the steps that prefilled.
        var prefilling = steps.Where(s => s.Prefilled > 0).ToList();
        Assert.Equal(kind == "ar" ? 73 : 64, prefilling.Sum(s => s.Prefilled));
        Assert.True(prefilling.Count >= 4, $"prefilled in {prefilling.Count} steps");
        Assert.True(prefilling.Count(s => s.Updates.Any(u => u.Sequence == 0 && u.Positions.Length > 0)) >= 2,
            "the running sequence decoded nothing while the long prompt was prefilled");
    }

    [Theory]
    [InlineData("ar")]
    [InlineData("diffusion")]
    public void ASequenceCancelledWhileItsPromptIsPrefilledLeavesAndFreesItsCache(string kind)
    {
        using var model = Model(kind);
        Alone(kind, model, Short);   // warm-up
        var baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var steps = new List<DecodeStep>();
        using (var session = Open(kind, model, chunk: 8))
        {
            session.Add(Short, Options);
            steps.Add(session.Step()!);
            var id = session.Add(Long, Options);
            steps.Add(session.Step()!);
            Assert.True(steps[^1].Prefilled > 0);
            session.Cancel(id);
            while (session.Step() is { } step) steps.Add(step);
        }
        var results = DecodeCollector.Collect(steps, 2);
        Assert.Equal(FinishReason.Cancelled, results[1].Finish);
        Assert.Empty(results[1].Tokens);
        Assert.Equal(Alone(kind, model, Short).Tokens, results[0].Tokens);
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    // Prompts of 22, 23, 21 and 19 tokens: within 16 tokens of each other (AR), and block 4 prefills the full blocks but
    // the last, 16, 16, 16 and 12 tokens: within one block.
    private static readonly int[][] Similar =
    [
        [.. Enumerable.Range(0, 22).Select(i => 30 + i * 3 % 100)],
        [.. Enumerable.Range(0, 23).Select(i => 40 + i * 5 % 120)],
        [.. Enumerable.Range(0, 21).Select(i => 90 + i * 3 % 70)],
        [.. Enumerable.Range(0, 19).Select(i => 15 + i * 7 % 160)],
    ];

    // Prompts of 5, 23, 14 and 40 tokens. Block 4 prefills the full blocks but the last: none of the first, 16, 8, 36.
    private static readonly int[][] Mixed =
    [
        [.. Enumerable.Range(0, 5).Select(i => 30 + i)],
        [.. Enumerable.Range(0, 23).Select(i => 40 + i * 5 % 120)],
        [.. Enumerable.Range(0, 14).Select(i => 90 + i * 3 % 70)],
        [.. Enumerable.Range(0, 40).Select(i => 15 + i * 7 % 160)],
    ];

    /// <summary>
    /// Adds <paramref name="burst"/> at once to an idle session: every prompt decodes what it decodes alone, in the
    /// given number of prefill forwards, and all of each context is prefilled.
    /// </summary>
    private static void BurstDecodesAsAlone(string kind, int[][] burst, int forwards, int arTokens, int blockTokens)
    {
        using var model = Model(kind);
        var alone = burst.Select(p => Alone(kind, model, p)).ToArray();
        var profile = new DecodeProfile();
        var steps = new List<DecodeStep>();
        using (var session = Open(kind, model, chunk: 0, profile))
        {
            foreach (var p in burst) session.Add(p, Options);
            while (session.Step() is { } step) steps.Add(step);
        }
        var results = DecodeCollector.Collect(steps, burst.Length);
        for (var i = 0; i < burst.Length; i++) Assert.Equal(alone[i].Tokens, results[i].Tokens);
        Assert.Equal(kind == "reference" ? 0 : forwards, profile.PrefillForwards);
        Assert.Equal(kind switch { "ar" => arTokens, "reference" => 0, _ => blockTokens }, steps.Sum(s => s.Prefilled));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void PromptsOfSimilarLengthArrivingTogetherArePrefilledInOneForwardAndDecodeAsAlone(string kind) =>
        BurstDecodesAsAlone(kind, Similar, forwards: 1, arTokens: 85, blockTokens: 60);

    // AR: 5 and 14 share a forward (9 tokens apart), 23 and 40 go alone (17 apart). Block: contexts of 16, 8 and 36
    // tokens are more than a block apart, so each is prefilled alone (the 5-token prompt has no context).
    [Theory]
    [MemberData(nameof(Kinds))]
    public void PromptsOfMixedLengthsArePrefilledTogetherOnlyWithinTheSlack(string kind) =>
        BurstDecodesAsAlone(kind, Mixed, forwards: 3, arTokens: 82, blockTokens: 60);

    [Fact]
    public void AGroupIsTheOldestPromptAndTheMostOthersWithinTheSlackInAgeOrder()
    {
        Assert.Equal([10, 12, 9], DecodeSession.SimilarInLength([10, 30, 12, 9, 40, 2], x => x, 4));
        Assert.Equal([10, 14, 12], DecodeSession.SimilarInLength([10, 6, 14, 12], x => x, 4));   // [10, 14] holds more than [6, 10]
        Assert.Equal([10], DecodeSession.SimilarInLength([10, 20, 30], x => x, 4));
        Assert.Equal([7], DecodeSession.SimilarInLength([7], x => x, 0));
    }

    [Theory]
    [InlineData("ar")]
    [InlineData("diffusion")]
    public void PromptsArrivingWhileTheBatchDecodesShareAForwardWithinTheChunk(string kind)
    {
        using var model = Model(kind);
        var alone = Similar.Select(p => Alone(kind, model, p)).ToArray();
        var profile = new DecodeProfile();
        var steps = new List<DecodeStep>();
        using (var session = Open(kind, model, chunk: 48, profile))
        {
            session.Add(Short, Options);
            steps.Add(session.Step()!);
            var before = profile.PrefillForwards;
            foreach (var p in Similar) session.Add(p, Options);
            steps.Add(session.Step()!);
            // AR: 22 + 23 = 45 tokens fit the chunk of 48 together, and the rest of the chunk, 3 tokens, starts the
            // 21-token prompt: two forwards where one per prompt would be three. Block: the three contexts of 16 fill
            // the chunk in one forward.
            Assert.Equal(48, steps[^1].Prefilled);
            Assert.Equal(before + (kind == "ar" ? 2 : 1), profile.PrefillForwards);
            while (session.Step() is { } step) steps.Add(step);
        }
        var results = DecodeCollector.Collect(steps, Similar.Length + 1);
        for (var i = 0; i < Similar.Length; i++) Assert.Equal(alone[i].Tokens, results[i + 1].Tokens);
    }

    [Fact]
    public void ANegativeChunkIsRefused() =>
        Assert.Contains("prefill chunk", Assert.Throws<DllmException>(() => new ArDecodeSession(TinyConfigs.Model("llama"), []) { PrefillChunk = -1 }).Message);
}
