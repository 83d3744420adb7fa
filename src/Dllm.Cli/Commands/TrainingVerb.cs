using System.CommandLine;
using Dllm.Training;

namespace Dllm.Cli.Commands;

/// <summary>
/// What pretrain, convert, sft and dpo share around their job: the progress view, Ctrl-C/SIGTERM handling
/// that ends with a checkpoint, and the closing report (where the model or the checkpoint is, how to resume).
/// </summary>
internal static class TrainingVerb
{
    public static int Run(ParseResult p, string title, CancellationToken cancel, Func<ITrainingObserver, CancellationToken, JobResult> job)
    {
        using var signals = new StopSignals(Output.Err(p), cancel);
        var view = new TrainingProgressView(Output.Out(p), Output.IsInteractive(p));
        var result = view.Run(title, () => job(view, signals.Token));
        return Report(p, result, signals.ExitCode);
    }

    private static int Report(ParseResult p, JobResult result, int stoppedExitCode)
    {
        if (result.Outcome == TrainingOutcome.Completed)
        {
            Output.Out(p).WriteLine($"wrote {Path.GetFullPath(result.Output)}" + (result.ValidationMetric is { } m ? $" ({result.Metric} {m:F4}, ppl bound {Math.Exp(m):F2})" : ""));
            return 0;
        }
        var latest = new CheckpointStore(result.RunDirectory).Latest();
        Output.Err(p).WriteLine(latest is null
            ? $"stopped before the first step finished: nothing to save (run folder {Path.GetFullPath(result.RunDirectory)})"
            : $"stopped: step {latest.Step} is saved in {Path.GetFullPath(latest.Path)}; run the same command with --resume to continue from it");
        return stoppedExitCode;
    }
}
