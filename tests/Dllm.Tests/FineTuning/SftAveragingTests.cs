using Dllm.FineTuning;
using Dllm.Models;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.FineTuning;

public class SftAveragingTests
{
    private static SftOptions Options(TempDirectory dir, string model, string tasks, string output, int average, long every = 2, int keep = 3) => new()
    {
        Model = model, Data = tasks, Output = dir.File(output), Settings = new SftSettings(4), AverageLast = average,
        Trainer = new TrainerOptions { Steps = 6, BatchSize = 2, Seed = 5, EvalEvery = 1000, CheckpointEvery = every, KeepLast = keep },
    };

    [Fact]
    public void AveragingTheLastCheckpointsWritesTheirElementWiseMean()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llama", dir.File("base"));
        var tasks = Cli.FineTuningCommandTests.Tasks(dir, "tasks.jsonl", 24, 3);
        var options = Options(dir, model, tasks, "averaged", average: 3, keep: 1);   // keeps as many as it averages
        Assert.Equal(TrainingOutcome.Completed, SftJob.Run(options).Outcome);

        var checkpoints = new CheckpointStore(options.ResolvedRunDirectory).List().OrderBy(c => c.Step).ToList();
        Assert.Equal([2L, 4L, 6L], checkpoints.Select(c => c.Step));
        using var scope = NewDisposeScope();
        using var written = LoadedModel.Load(options.Output);
        var parts = checkpoints.Select(c => LoadedModel.Load(c.Path)).ToList();
        try
        {
            var states = parts.Select(p => p.Model.state_dict()).ToList();
            var movedFromLast = false;
            foreach (var (name, tensor) in written.Model.state_dict())
            {
                var mean = states.Select(s => s[name].to_type(ScalarType.Float64)).Aggregate((a, b) => a + b) / states.Count;
                Assert.True(tensor.to_type(ScalarType.Float64).allclose(mean, rtol: 0, atol: 1e-6), $"{name} is not the mean of the last three checkpoints");
                movedFromLast |= !tensor.eq(states[^1][name]).all().item<bool>();
            }
            Assert.True(movedFromLast, "the output equals the last checkpoint: nothing was averaged");
        }
        finally { parts.ForEach(p => p.Dispose()); }
    }

    [Theory]
    [InlineData(4, 2, 0, "before step 0")]      // 3 x 2 steps back from step 6 is step 0
    [InlineData(0, 2, 3, "at least 1")]
    public void AveragingThatCannotHappenIsRefusedBeforeTraining(int average, long every, int keep, string message)
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llama", dir.File("base"));
        var tasks = Cli.FineTuningCommandTests.Tasks(dir, "tasks.jsonl", 24, 3);
        var options = Options(dir, model, tasks, "refused", average, every, keep);
        var error = Assert.Throws<DllmException>(() => SftJob.Run(options));
        Assert.Contains(message, error.Message);
        Assert.Empty(new CheckpointStore(options.ResolvedRunDirectory).List());
    }
}
