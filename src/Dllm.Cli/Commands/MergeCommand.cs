using System.CommandLine;
using Dllm.Training;

namespace Dllm.Cli.Commands;

internal static class MergeCommand
{
    public static Command Build()
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A training run folder (its checkpoints/ and index.json)" };
        var topK = new Option<int>("--top-k", "-k") { Description = "How many of the best checkpoints (by validation NELBO) to average", DefaultValueFactory = _ => 3 };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the merged checkpoint", Required = true };
        var command = new Command("merge",
            "Average the K best checkpoints of a run (by their validation metric) into one model: element-wise mean of " +
            "every tensor, which the LLaDA2.0 report finds more robust than the last checkpoint.")
        {
            run, topK, output,
        };
        command.SetAction(p =>
        {
            var store = new CheckpointStore(p.GetValue(run)!);
            var chosen = CheckpointMerge.Select(store, p.GetValue(topK));
            foreach (var c in chosen) Output.Out(p).WriteLine($"  step {c.Step}: metric {c.Metric:F4}");
            CheckpointMerge.Merge(chosen.Select(c => c.Path).ToList(), p.GetValue(output)!);
            Output.Out(p).WriteLine($"wrote {Path.GetFullPath(p.GetValue(output)!)} (mean of {chosen.Count} checkpoints)");
            return 0;
        });
        return command;
    }
}
