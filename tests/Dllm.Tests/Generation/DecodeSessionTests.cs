using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// Continuous batching: sequences that join a running batch mid-way, or leave it early, get exactly the tokens
/// they get alone, for AR and block decoding (same-position and shifted labels, with and without token editing).
/// </summary>
public class DecodeSessionTests
{
    internal const int Mask = 271;

    public DecodeSessionTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Kinds => new() { "ar", "diffusion", "shifted", "editing", "reference" };

    /// <summary>The decoding tests' models: "ar" a plain AR model, "shifted" a shifted-label dLLM at block 4, else a same-position LLaDA2 dLLM.</summary>
    internal static CausalLM Model(string kind)
    {
        var model = kind switch
        {
            "ar" => TinyConfigs.Model("qwen2", seed: 11),
            "shifted" => TinyConfigs.Shifted("qwen3", seed: 3, blockSize: 4),
            _ => TinyConfigs.Model("llada2", seed: 3),
        };
        // A large output scale spreads confidences over (0, 1], so the threshold rule decides several slots per step.
        if (kind != "ar") using (no_grad()) model.OutputWeight.mul_(12);
        return model;
    }

    private static DecodeSession Open(string kind, CausalLM model) => kind switch
    {
        "ar" => new ArDecodeSession(model, []),
        "editing" => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4, Editing: new EditingOptions(0.5, 2)), Mask, []),
        "reference" => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4, UseCache: false), Mask, []),
        _ => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4), Mask, []),
    };

    // Prompt lengths 9, 3, 8 and 1 put the first window at every offset in a block of 4 (8 ends on a boundary).
    private static readonly (int[] Prompt, DecodeOptions Options)[] Requests =
    [
        ([5, 6, 7, 8, 9, 10, 11, 12, 13], new DecodeOptions { MaxNewTokens = 6 }),
        ([20, 21, 22], new DecodeOptions { MaxNewTokens = 13 }),
        ([30, 31, 32, 33, 34, 35, 36, 37], new DecodeOptions { MaxNewTokens = 10, Sampling = new SamplingOptions(0.8, Seed: 7) }),
        ([40], new DecodeOptions { MaxNewTokens = 9 }),
    ];

    /// <summary>Steps until empty; adds request k before step joinAt[k]. Returns each sequence's tokens and the steps.</summary>
    private static (DecodedSequence[] Results, List<DecodeStep> Steps) Run(string kind, CausalLM model, int[] requests, int[] joinAt)
    {
        using var session = Open(kind, model);
        var steps = new List<DecodeStep>();
        var ids = new Dictionary<int, int>();
        for (var n = 0; ; n++)
        {
            for (var k = 0; k < requests.Length; k++)
                if (joinAt[k] == n) ids[session.Add(Requests[requests[k]].Prompt, Requests[requests[k]].Options)] = k;
            if (session.Step() is not { } step)
            {
                if (joinAt.Any(j => j > n)) continue;
                break;
            }
            steps.Add(step);
        }
        var collected = DecodeCollector.Collect(steps, requests.Length);
        return (collected.ToArray(), steps);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ASequenceThatJoinsARunningBatchGetsTheTokensItGetsAlone(string kind)
    {
        using var model = Model(kind);
        var alone = Enumerable.Range(0, Requests.Length).Select(i => Run(kind, model, [i], [0]).Results[0]).ToArray();

        // 0 starts alone; 1 joins after two steps, 2 and 3 after five; 0 leaves early (limit 6), so its columns are trimmed.
        var (joined, steps) = Run(kind, model, [0, 1, 2, 3], [0, 2, 5, 5]);
        for (var i = 0; i < Requests.Length; i++)
        {
            Assert.Equal(alone[i].Tokens, joined[i].Tokens);
            Assert.Equal(alone[i].Finish, joined[i].Finish);
        }
        // They really shared forwards: the batch grew while the first sequence was still running.
        Assert.Contains(steps, s => s.Rows >= 3);
        Assert.Equal(1, steps[0].Rows);
        var firstOf = Enumerable.Range(0, 4).Select(i => steps.FindIndex(s => s.Updates.Any(u => u.Sequence == i && u.Positions.Length > 0))).ToArray();
        Assert.True(firstOf[1] > firstOf[0] && firstOf[2] > firstOf[1], $"first updates at steps {string.Join(", ", firstOf)}");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ACancelledSequenceLeavesAtTheNextStepAndTheOthersGoOn(string kind)
    {
        using var model = Model(kind);
        var alone = Run(kind, model, [1], [0]).Results[0];
        using var session = Open(kind, model);
        var stay = session.Add(Requests[1].Prompt, Requests[1].Options);
        var leave = session.Add(Requests[3].Prompt, Requests[3].Options);
        var steps = new List<DecodeStep> { session.Step()! };
        Assert.Equal(2, steps[0].Rows);
        session.Cancel(leave);
        Assert.Equal(2, session.Running);
        var next = session.Step()!;
        steps.Add(next);
        var gone = Assert.Single(next.Updates, u => u.Sequence == leave);
        Assert.Equal(FinishReason.Cancelled, gone.Finished);
        Assert.Equal(1, session.Running);
        Assert.True(next.Rows <= 1, $"the cancelled sequence still took part in a forward ({next.Rows} rows)");
        while (session.Step() is { } s) steps.Add(s);
        var results = DecodeCollector.Collect(steps, 2);
        Assert.Equal(alone.Tokens, results[stay].Tokens);
        Assert.Equal(FinishReason.Cancelled, results[leave].Finish);
        Assert.Equal(0, session.Count);
    }

    [Fact]
    public void DiffusionSequencesJoinOnlyAtBlockBoundaries()
    {
        using var model = Model("diffusion");
        using var session = Open("diffusion", model);
        session.Add(Requests[1].Prompt, Requests[1].Options);
        // Threshold 0.6 with 4 steps per block: a block takes 1 to 4 forwards. Add a sequence after the first
        // forward; it may only take part once the first block has ended (BlockStart counts generated tokens: the
        // 3-token prompt left one generated slot in the first block, so the second block starts at 1).
        var first = session.Step()!;
        session.Add(Requests[3].Prompt, Requests[3].Options);
        var rows = new List<(int Rows, int BlockStart)> { (first.Rows, first.BlockStart) };
        while (session.Step() is { } s) rows.Add((s.Rows, s.BlockStart));
        var joined = rows.FindIndex(r => r.Rows == 2);
        Assert.True(joined > 0);
        Assert.All(rows.Take(joined), r => Assert.Equal(0, r.BlockStart));
        Assert.Equal(1, rows[joined].BlockStart);
    }

    [Fact]
    public void APromptThatFillsTheContextIsRefusedWhenAdded()
    {
        using var model = Model("ar");
        using var session = Open("ar", model);
        var e = Assert.Throws<DllmException>(() => session.Add(Enumerable.Repeat(5, model.Config.MaxPositionEmbeddings).ToArray(), new DecodeOptions()));
        Assert.Contains("context", e.Message);
        Assert.Throws<DllmException>(() => session.Add([], new DecodeOptions()));
        Assert.Equal(0, session.Count);
    }
}
