using System.CommandLine;
using Dllm.Plots;

namespace Dllm.Cli.Commands;

internal static class PlotCommand
{
    public static Command Build()
    {
        var runs = new Argument<string[]>("RUN_DIR") { Description = "Training run folders (their metrics.jsonl); the first one's block-size phases are marked", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out", "-o") { Description = "PNG file to write", DefaultValueFactory = _ => "loss.png" };
        var title = new Option<string>("--title") { Description = "Chart title (default: what is drawn)" };
        var metric = new Option<string>("--metric")
        {
            Description = "What to draw: loss (the training loss every step, smoothed) or valid (the validation metric the run logged, e.g. " +
                          "valid_nelbo_b32: comparable across loss weights, unlike the training loss)",
            DefaultValueFactory = _ => "loss",
        };
        metric.AcceptOnlyFromAmong("loss", "valid");
        var command = new Command("plot", "Draw the loss (or validation) curves of training runs as a PNG, with the block-size schedule's phases marked.")
        {
            runs, output, title, metric,
        };
        command.SetAction(p =>
        {
            try
            {
                var curves = p.GetValue(runs)!.Select(r => TrainingCurve.Read(r)).ToList();
                var validation = p.GetValue(metric) == "valid";
                LossCurvePlot.Write(curves, p.GetValue(output)!, p.GetValue(title) ?? (validation ? "validation" : "training loss"), validation: validation);
            }
            catch (DllmPlotException e)
            {
                throw new DllmException(e.Message);
            }
            Output.Out(p).WriteLine($"wrote {Path.GetFullPath(p.GetValue(output)!)}");
            return 0;
        });
        return command;
    }
}
