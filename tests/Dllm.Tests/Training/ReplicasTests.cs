using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.Training;

public class ReplicasTests
{
    public ReplicasTests() => TorchRuntime.EnsureLoaded();

    private const long Steps = 6;

    private static TrainerOptions Options(int replicas, int accumulate = 2) => new()
    {
        Steps = Steps,
        BatchSize = 4,
        GradientAccumulation = accumulate,
        Replicas = replicas,
        PeakLearningRate = 3e-3,
        Seed = 11,
        EmbeddingNoise = 0.1,
        EmbeddingNoiseSteps = 3,
        EvalEvery = 1000,
        CheckpointEvery = 1000,
        SpikeFactor = 0,
    };

    private static readonly long[][] Data = InMemoryBatchSource.Patterns(40, 16, 200, 4);

    /// <summary>Trains a fresh model of <paramref name="arch"/> with block-diffusion masks (random draws every micro-batch); returns its weights and losses.</summary>
    private static (Dictionary<string, Tensor> Weights, List<double> Losses) Train(string arch, TrainerOptions options, string dir, CheckpointInfo? resume = null, CausalLM? start = null)
    {
        using var model = start ?? TinyConfigs.Model(arch, seed: 3);
        var recorder = new List<double>();
        var objective = new BlockDiffusionObjective(BlockSchedule.Wsd(Steps, 16, finalBlockSize: 4), maskTokenId: 271, new NoiseOptions());
        var trainer = new Trainer(model, TinyCheckpoints.Tokenizer(), objective, new InMemoryBatchSource(Data, 4), null, options, dir, new LossRecorder(recorder));
        trainer.Run(resume);
        return (model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()), recorder);
    }

    private sealed class LossRecorder(List<double> losses) : ITrainingObserver
    {
        public void Step(StepMetrics m) => losses.Add(m.Loss);
    }

    [Theory]
    [InlineData("llama", 2, 2)]
    [InlineData("llama", 2, 4)]
    [InlineData("llada2", 2, 2)]   // experts a micro-batch routes nothing to have no gradient in that replica
    [InlineData("qwen3", 3, 3)]
    public void MicroBatchesOnReplicasTrainTheSameModelAsOneAfterAnother(string arch, int replicas, int accumulate)
    {
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        var (serial, serialLosses) = Train(arch, Options(1, accumulate), a.Path);
        var (parallel, parallelLosses) = Train(arch, Options(replicas, accumulate), b.Path);
        Assert.Equal(serialLosses.Count, parallelLosses.Count);
        for (var i = 0; i < serialLosses.Count; i++) Assert.Equal(serialLosses[i], parallelLosses[i], 5);
        foreach (var (name, w) in serial)
        {
            var gap = (w - parallel[name]).abs().max().item<float>();
            // Float summation order only: AdamW divides by the root of small second moments in experts a micro-batch
            // rarely routes to, which grows rounding to 2.3e-5 there after 6 steps (flat loss weight). A lost or doubled
            // micro-batch gradient moves a weight by a good part of the step size (3e-3 per step).
            Assert.True(gap < 1e-4, $"{arch}: {name} differs by {gap} with {replicas} replicas");
        }
        // Training moved the weights: equal because both trained alike, not because neither did.
        using var untouched = TinyConfigs.Model(arch, seed: 3);
        var start = untouched.state_dict();
        Assert.Contains(serial, kv => (kv.Value - start[kv.Key]).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void AnInterruptedRunOnReplicasResumesToBitIdenticalWeights()
    {
        using var straight = new TempDirectory();
        using var resumed = new TempDirectory();
        var (expected, _) = Train("llama", Options(2), straight.Path);
        Train("llama", Options(2) with { StopAfter = 3 }, resumed.Path);
        var checkpoint = new CheckpointStore(resumed.Path).Latest()!;
        Assert.Equal(3, checkpoint.Step);
        var (actual, _) = Train("llama", Options(2), resumed.Path, checkpoint, ModelLoader.Load(checkpoint.Path));
        foreach (var (name, w) in expected)
            Assert.True(w.eq(actual[name]).all().item<bool>(), $"{name} differs after resuming on replicas");
    }

    [Fact]
    public void ReplicaSettingsThatCannotWorkAreRefusedByName()
    {
        var e = Assert.Throws<DllmException>(() => (Options(2) with { GradientAccumulation = 3 }).Validate());
        Assert.Contains("--grad-accum 3 is not a multiple of --replicas 2", e.Message);
        e = Assert.Throws<DllmException>(() => (Options(2) with { Device = "cuda" }).Validate());
        Assert.Contains("CPU threads", e.Message);
        e = Assert.Throws<DllmException>(() => (Options(0)).Validate());
        Assert.Contains("--replicas", e.Message);
    }
}
