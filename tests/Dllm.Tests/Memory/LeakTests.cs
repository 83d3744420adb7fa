using Dllm.Generation;
using Dllm.Runtime;
using Dllm.Tests.Training;
using Dllm.Training;
using TorchSharp;

namespace Dllm.Tests.Memory;

/// <summary>
/// Long runs must not grow native memory: after decoding or training, the number of live tensors this
/// thread created is back where it started (every temporary was disposed, caches included).
/// </summary>
public class LeakTests
{
    public LeakTests() => TorchRuntime.EnsureLoaded();

    private static long Live => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    [Fact]
    public void DecodingLeavesNoTensorsBehind()
    {
        using var model = TinyConfigs.Model("llada2", seed: 1);
        var options = new DecodeOptions { MaxNewTokens = 12, Sampling = new SamplingOptions(0.8, TopK: 20, Seed: 3) };
        // Warm up once: lazily created state (generators, caches in libtorch) is not a leak.
        DecodeCollector.Collect(ArDecoder.Run(model, [[5, 6, 7], [8, 9]], options), 2);
        DecodeCollector.Collect(BlockDecoder.Run(model, [[5, 6, 7], [8, 9]], options, new BlockDecodeOptions(4, 0.5, 4), 271), 2);
        var baseline = Live;
        for (var i = 0; i < 3; i++)
        {
            DecodeCollector.Collect(ArDecoder.Run(model, [[5, 6, 7], [8, 9]], options), 2);
            DecodeCollector.Collect(BlockDecoder.Run(model, [[5, 6, 7], [8, 9]], options, new BlockDecodeOptions(4, 0.5, 4), 271), 2);
            DecodeCollector.Collect(BlockDecoder.Run(model, [[5, 6, 7]], options, new BlockDecodeOptions(4, 0.5, 4, UseCache: false), 271), 1);
        }
        Assert.Equal(baseline, Live);
    }

    /// <summary>
    /// What a server's session goes through: sequences joining while others decode, one cancelled mid-block, rows
    /// leaving as they finish, until the session is empty again. Each round must end where it started.
    /// </summary>
    [Fact]
    public void ContinuousBatchingSessionsLeaveNoTensorsBehind()
    {
        using var model = TinyConfigs.Model("llama", seed: 1);
        var greedy = new DecodeOptions { MaxNewTokens = 10 };
        var sampled = new DecodeOptions { MaxNewTokens = 7, Sampling = new SamplingOptions(0.8, TopK: 20, Seed: 3) };
        void Round(DecodeSession session)
        {
            session.Add([5, 6, 7], greedy);
            session.Step();
            session.Step();
            var cancelled = session.Add([8, 9, 10, 11, 12, 13, 14, 15, 16], sampled);   // longer than a block: prefilled on joining
            session.Step();
            session.Add([3, 4], sampled);
            for (var i = 0; i < 3; i++) session.Step();
            session.Cancel(cancelled);
            while (session.Step() is not null) { }
        }
        // Created one at a time: a session holds a few tensors of its own until it is disposed.
        Func<DecodeSession>[] sessions =
        [
            () => new ArDecodeSession(model, [2]),
            () => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.5, 4), 271, [2]),
            () => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.5, 4, UseCache: false), 271, [2]),
        ];
        foreach (var create in sessions)
            using (var session = create()) Round(session);   // warm-up
        var baseline = Live;
        foreach (var create in sessions)
        {
            var name = "";
            using (var session = create())
            {
                name = session.GetType().Name;
                for (var i = 0; i < 3; i++) Round(session);
            }
            Assert.True(baseline == Live, $"{name}: {Live - baseline} tensors left");
        }
    }

    [Fact]
    public void TrainingStepsLeaveNoTensorsBehind()
    {
        using var dir = new TempDirectory();
        using var model = TinyConfigs.Model("llama", seed: 2);
        var data = new InMemoryBatchSource(InMemoryBatchSource.Patterns(16, 16, 200, 1), 4);
        var objective = new BlockDiffusionObjective(BlockSchedule.Wsd(10, 16, 4), 271, new Dllm.Diffusion.NoiseOptions());
        var options = new TrainerOptions { Steps = 10, BatchSize = 4, GradientAccumulation = 2, EmbeddingNoise = 0.1, EmbeddingNoiseSteps = 5, CheckpointEvery = 1000 };
        new Trainer(model, TinyCheckpoints.Tokenizer(), objective, data, null, options, dir.File("warm")).Run();
        var baseline = Live;
        new Trainer(model, TinyCheckpoints.Tokenizer(), objective, data, null, options, dir.File("run")).Run();
        Assert.Equal(baseline, Live);
    }
}
