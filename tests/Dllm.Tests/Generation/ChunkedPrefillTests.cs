using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// Chunked prefill: a long prompt that arrives while another sequence decodes is prefilled a chunk per step, so the
/// running sequence keeps getting tokens every step, and both decode exactly what they decode alone.
/// </summary>
public class ChunkedPrefillTests
{
    private const int Mask = DecodeSessionTests.Mask;

    public ChunkedPrefillTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Kinds => new() { "ar", "diffusion", "shifted", "reference" };

    private static CausalLM Model(string kind) => DecodeSessionTests.Model(kind);

    private static DecodeSession Open(string kind, CausalLM model, int chunk) => kind switch
    {
        "ar" => new ArDecodeSession(model, []) { PrefillChunk = chunk },
        "reference" => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4, UseCache: false), Mask, []) { PrefillChunk = chunk },
        _ => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4), Mask, []) { PrefillChunk = chunk },
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

    [Fact]
    public void ANegativeChunkIsRefused() =>
        Assert.Contains("prefill chunk", Assert.Throws<DllmException>(() => new ArDecodeSession(TinyConfigs.Model("llama"), []) { PrefillChunk = -1 }).Message);
}
