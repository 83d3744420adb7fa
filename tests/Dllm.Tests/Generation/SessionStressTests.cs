using Dllm.Generation;
using Dllm.Runtime;

namespace Dllm.Tests.Generation;

/// <summary>
/// What a busy server does to a decode session, at random: prompts of any length join between steps, sequences are
/// cancelled at any point (queued, mid-block, on the step they would finish), token limits and sampling differ.
/// Every step must succeed and every sequence must end exactly once.
/// </summary>
public class SessionStressTests
{
    public SessionStressTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData("block", false, 1)]
    [InlineData("block", true, 2)]
    [InlineData("block-uncached", true, 3)]
    [InlineData("ar", false, 4)]
    [InlineData("block", true, 5)]
    public void RandomJoinsAndCancelsNeverBreakASession(string kind, bool shifted, int seed)
    {
        using var model = shifted ? TinyConfigs.Shifted("llama", blockSize: 8) : TinyConfigs.Model("llama");
        using DecodeSession session = kind switch
        {
            "ar" => new ArDecodeSession(model, [2]),
            _ => new BlockDecodeSession(model, new BlockDecodeOptions(8, seed % 2 == 0 ? 0.3 : 0.95, 8, UseCache: kind == "block"), 271, [2]),
        };
        var rng = new Random(seed);
        var live = new HashSet<int>();
        var ended = new HashSet<int>();
        for (var step = 0; step < 400; step++)
        {
            if (rng.NextDouble() < 0.35)
            {
                var prompt = Enumerable.Range(0, rng.Next(1, 30)).Select(_ => rng.Next(3, 260)).ToArray();
                var options = new DecodeOptions { MaxNewTokens = rng.Next(1, 20), Sampling = rng.Next(2) == 0 ? new SamplingOptions() : new SamplingOptions(0.8, Seed: rng.Next()) };
                live.Add(session.Add(prompt, options));
            }
            if (live.Count > 0 && rng.NextDouble() < 0.2) session.Cancel(live.ElementAt(rng.Next(live.Count)));
            DecodeStep? result;
            try { result = session.Step(); }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"step {step} ({session.Running} running, {session.Waiting} waiting): {e}"); }
            foreach (var u in result?.Updates ?? [])
                if (u.Finished is not null)
                {
                    Assert.True(ended.Add(u.Sequence), $"sequence {u.Sequence} ended twice");
                    live.Remove(u.Sequence);
                }
        }
        while (session.Step() is { } last)
            foreach (var u in last.Updates)
                if (u.Finished is not null) Assert.True(ended.Add(u.Sequence) && live.Remove(u.Sequence));
        Assert.Empty(live);
        Assert.Equal(0, session.Count);
    }
}
