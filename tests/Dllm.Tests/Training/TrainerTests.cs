using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.Training;

public class TrainerTests
{
    public TrainerTests() => TorchRuntime.EnsureLoaded();

    private sealed class Recorder : ITrainingObserver
    {
        public List<StepMetrics> Steps { get; } = [];
        public List<string> Messages { get; } = [];
        public void Step(StepMetrics m) => Steps.Add(m);
        public void Message(string text) => Messages.Add(text);
    }

    private static CausalLM Model(string dtype = "float32")
    {
        var model = ModelFactory.Create(TinyConfigs.Config("llama"), new Placement(TorchRuntime.ParseDType(dtype), CPU));
        ModelInit.Randomize(model, seed: 5);
        return model;
    }

    private static TrainerOptions Options(long steps, string dtype = "float32") => new()
    {
        Steps = steps,
        BatchSize = 4,
        GradientAccumulation = 2,
        PeakLearningRate = 3e-3,
        ComputeDType = dtype,
        Seed = 17,
        EmbeddingNoise = 0.1,
        EmbeddingNoiseSteps = steps / 2,
        EvalEvery = 1000,
        CheckpointEvery = 1000,
    };

    private static ITrainingObjective Diffusion(long steps) =>
        new BlockDiffusionObjective(BlockSchedule.Wsd(steps, 16, finalBlockSize: 4), maskTokenId: 271, new NoiseOptions());

    [Fact]
    public void ArTrainingLowersTheLossOnLearnableData()
    {
        using var dir = new TempDirectory();
        using var model = Model();
        var data = new InMemoryBatchSource(InMemoryBatchSource.Patterns(64, 16, 200, 1), 4);
        var recorder = new Recorder();
        var trainer = new Trainer(model, TinyCheckpoints.Tokenizer(), new ArObjective(), data, null, Options(80) with { EmbeddingNoise = 0, PeakLearningRate = 1e-2 }, dir.Path, recorder);
        Assert.Equal(TrainingOutcome.Completed, trainer.Run());
        var first = recorder.Steps.Take(5).Average(s => s.Loss);
        var last = recorder.Steps.TakeLast(5).Average(s => s.Loss);
        Assert.True(last < 0.6 * first, $"loss went from {first:F3} to {last:F3}");
        Assert.Equal(80, File.ReadAllLines(Path.Combine(dir.Path, "metrics.jsonl")).Length);
        Assert.Single(trainer.Checkpoints.List());
    }

    [Theory]
    [InlineData("float32")]
    [InlineData("bfloat16")]
    public void AnInterruptedRunResumesToBitIdenticalWeights(string dtype)
    {
        const long steps = 12;
        var data = InMemoryBatchSource.Patterns(40, 16, 200, 2);
        using var straightDir = new TempDirectory();
        using var resumedDir = new TempDirectory();

        using (var model = Model(dtype))
        {
            var trainer = new Trainer(model, TinyCheckpoints.Tokenizer(), Diffusion(steps), new InMemoryBatchSource(data, 4), null, Options(steps, dtype), straightDir.Path);
            Assert.Equal(TrainingOutcome.Completed, trainer.Run());
        }
        using (var model = Model(dtype))
        {
            var trainer = new Trainer(model, TinyCheckpoints.Tokenizer(), Diffusion(steps), new InMemoryBatchSource(data, 4), null, Options(steps, dtype) with { StopAfter = 5 }, resumedDir.Path);
            Assert.Equal(TrainingOutcome.Stopped, trainer.Run());
        }
        var store = new CheckpointStore(resumedDir.Path);
        var checkpoint = store.Latest()!;
        Assert.Equal(5, checkpoint.Step);
        // A new process would load the model from the checkpoint, in the compute dtype.
        using (var model = ModelLoader.Load(checkpoint.Path, new LoadOptions(DType: dtype)))
        {
            var trainer = new Trainer(model, TinyCheckpoints.Tokenizer(), Diffusion(steps), new InMemoryBatchSource(data, 4), null, Options(steps, dtype), resumedDir.Path);
            Assert.Equal(TrainingOutcome.Completed, trainer.Run(checkpoint));
        }
        using var a = ModelLoader.Load(new CheckpointStore(straightDir.Path).Latest()!.Path);
        using var b = ModelLoader.Load(store.Latest()!.Path);
        var wa = a.state_dict();
        foreach (var (name, value) in b.state_dict())
            Assert.True(value.eq(wa[name]).all().item<bool>(), $"{name} differs after resume ({dtype})");
        Assert.Equal(File.ReadAllLines(Path.Combine(straightDir.Path, "metrics.jsonl")).Select(StripTiming),
            File.ReadAllLines(Path.Combine(resumedDir.Path, "metrics.jsonl")).Select(StripTiming));
    }

    private static string StripTiming(string line)
    {
        var o = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
        o.Remove("tokens_per_second");
        o.Remove("elapsed_seconds");
        return o.ToJsonString();
    }

    /// <summary>The inner loss times a factor chosen per step (NaN poisons a step; a constant from some step on shifts the level).</summary>
    private sealed class ScaledObjective(ITrainingObjective inner, Func<long, double> scale, Func<long, int>? blockSizeAt = null) : ITrainingObjective
    {
        public string Name => inner.Name;
        public int BlockSizeAt(long step) => blockSizeAt?.Invoke(step) ?? inner.BlockSizeAt(step);
        public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context)
        {
            var r = inner.Compute(model, batch, context);
            return r with { Loss = r.Loss * scale(context.Step) };
        }
    }

    /// <summary>AR training on patterns with the loss scaled per step; returns what the observer saw.</summary>
    private static Recorder TrainScaled(CausalLM model, Func<long, double> scale, long steps, Func<long, int>? blockSizeAt = null)
    {
        using var dir = new TempDirectory();
        var recorder = new Recorder();
        var data = new InMemoryBatchSource(InMemoryBatchSource.Patterns(16, 16, 200, 3), 4);
        new Trainer(model, TinyCheckpoints.Tokenizer(), new ScaledObjective(new ArObjective(), scale, blockSizeAt), data, null,
            Options(steps) with { GradientAccumulation = 1 }, dir.Path, recorder).Run();
        return recorder;
    }

    [Fact]
    public void TheSpikeGuardSkipsALoneSpikeButFollowsALastingRiseInTheLoss()
    {
        using var model = Model();
        // A lone spike at step 8, then from step 12 on every loss is 20x higher for good.
        var recorder = TrainScaled(model, step => step == 8 ? 20 : step >= 12 ? 20 : 1, steps: 40);
        Assert.True(recorder.Steps[8].Skipped);
        var skippedAfterRise = recorder.Steps.Where(s => s.Step >= 12 && s.Skipped).Select(s => s.Step).ToList();
        // The 20-loss window holds 12 losses from before the rise: the median moves once the new ones are the majority.
        Assert.InRange(skippedAfterRise.Count, 1, 13);
        Assert.All(recorder.Steps.Where(s => s.Step >= 26), s => Assert.False(s.Skipped, $"step {s.Step} is still skipped"));
    }

    [Fact]
    public void TheSpikeGuardStartsAfreshWhenTheBlockSizeChanges()
    {
        // Conversion's schedule: block 1 (AR) until step 12, then block 32, whose loss is 20x higher. Not a spike;
        // a 20x rise at an unchanged block size still is.
        using var model = Model();
        var recorder = TrainScaled(model, step => step == 24 ? 400 : step >= 12 ? 20 : 1, steps: 30, blockSizeAt: step => step < 12 ? 1 : 32);
        Assert.DoesNotContain(recorder.Steps, s => s.Step < 24 && s.Skipped);
        Assert.True(recorder.Steps[24].Skipped);   // a spike within the new block size still is one
        using var again = Model();
        var unchanged = TrainScaled(again, step => step >= 12 ? 20 : 1, steps: 14, blockSizeAt: _ => 32);
        Assert.True(unchanged.Steps[12].Skipped);
    }

    [Fact]
    public void NanStepsAreSkippedWithALogLineAndLeaveWeightsUnchanged()
    {
        using var model = Model();
        var recorder = TrainScaled(model, step => step == 3 ? double.NaN : 1, steps: 6);
        Assert.True(recorder.Steps[3].Skipped);
        Assert.Equal(1, recorder.Steps.Count(s => s.Skipped));
        Assert.Contains(recorder.Messages, m => m.Contains("skipped step 3"));
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
    }
}
