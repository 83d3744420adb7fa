using Dllm.Demo;
using Dllm.FineTuning;
using Dllm.Models;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.Demo;

public class SideBySideTests
{
    // With --plain-sft the demo trains plain SFT and SFT+CAP at the same time on two threads. Nothing may leak between the
    // jobs (dispose scopes, grad mode, generators, files): each must end bit-identical to the same job run
    // alone at one intra-op thread, and the process's thread count must come back.
    [Fact]
    public void TwoJobsSideBySideEndAsTheyWouldAlone()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llama", dir.File("base"));
        var tasks = Cli.FineTuningCommandTests.Tasks(dir, "tasks.jsonl", 24, 3);
        Func<ITrainingObserver, JobResult> Job(string output, double cap) => view => SftJob.Run(new SftOptions
        {
            Model = model, Data = tasks, Output = dir.File(output), Settings = new SftSettings(4, CapWeight: cap),
            Trainer = new TrainerOptions { Steps = 3, BatchSize = 2, Seed = 5, EvalEvery = 1000, CheckpointEvery = 1000, KeepLast = 1 },
        }, view);

        int threads = get_num_threads();
        set_num_threads(1);
        try
        {
            Assert.Equal(TrainingOutcome.Completed, Job("sft-alone", 0)(NullObserver.Instance).Outcome);
            Assert.Equal(TrainingOutcome.Completed, Job("cap-alone", 2)(NullObserver.Instance).Outcome);
        }
        finally { set_num_threads(threads); }

        var messages = new List<string>();
        DemoJob.SideBySide(parallel: true, new RecordingObserver(messages), Job("sft-paired", 0), Job("cap-paired", 2));

        Assert.Equal(threads, get_num_threads());
        AssertSameWeights(dir.File("sft-alone"), dir.File("sft-paired"));
        AssertSameWeights(dir.File("cap-alone"), dir.File("cap-paired"));
        Assert.Contains(messages, m => m.Contains("CAP weight 2", StringComparison.Ordinal));
    }

    private static void AssertSameWeights(string expected, string actual)
    {
        using var scope = NewDisposeScope();
        using var a = LoadedModel.Load(expected);
        using var b = LoadedModel.Load(actual);
        var other = b.Model.state_dict();
        foreach (var (name, tensor) in a.Model.state_dict())
            Assert.True(tensor.equal(other[name]).all().item<bool>(), $"{name} differs between {expected} and {actual}");
    }

    private sealed class RecordingObserver(List<string> messages) : ITrainingObserver
    {
        public void Message(string text) => messages.Add(text);
    }
}
