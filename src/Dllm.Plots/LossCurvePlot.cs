using ScottPlot;

namespace Dllm.Plots;

/// <summary>
/// Training loss (or, with <c>validation</c>, the validation metric) against step for one or more runs, with the
/// block-size phases of the first run marked by vertical lines labelled "B=..". Raw losses are faint; the smoothed
/// trend is drawn on top. Training losses of runs with other loss weights are not comparable; their validation is.
/// </summary>
public static class LossCurvePlot
{
    public static void Write(IReadOnlyList<TrainingCurve> curves, string pngPath, string title = "training loss", int width = 1000, int height = 560,
        bool validation = false)
    {
        if (curves.Count == 0) throw new DllmPlotException("nothing to plot");
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var values = new List<double>();
        for (var i = 0; i < curves.Count; i++)
        {
            var c = curves[i];
            var color = palette.GetColor(i);
            if (validation)
            {
                if (c.Validation is not { Length: > 0 } v) continue;
                var line = plot.Add.ScatterLine(c.ValidationSteps!, v);
                line.Color = color;
                line.LineWidth = 2;
                line.MarkerSize = 4;
                line.LegendText = c.Label;
                values.AddRange(v);
                continue;
            }
            var raw = plot.Add.ScatterLine(c.Steps, c.Loss);
            raw.Color = color.WithAlpha(0.25);
            raw.LineWidth = 1;
            var trend = plot.Add.ScatterLine(c.Steps, c.Smoothed());
            trend.Color = color;
            trend.LineWidth = 2;
            trend.LegendText = c.Label;
            if (i == 0) values.AddRange(c.Loss);
        }
        if (validation && values.Count == 0)
            throw new DllmPlotException("none of these runs logged a validation metric in its metrics.jsonl (runs trained before it was logged there, or without a validation split)");
        var first = curves[0];
        var top = values.Where(double.IsFinite).DefaultIfEmpty(1).Max();
        foreach (var (step, block) in first.PhaseStarts())
        {
            var line = plot.Add.VerticalLine(step);
            line.Color = Colors.Gray.WithAlpha(0.6);
            line.LinePattern = LinePattern.Dashed;
            var label = plot.Add.Text($"B={block}", step, top);
            label.LabelFontSize = 11;
            label.LabelFontColor = Colors.DimGray;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(validation
            ? $"validation {curves.Select(c => c.ValidationMetric).FirstOrDefault(m => m is not null)} (per token)"
            : "training loss per token (as the run's objective weights it)");
        if (curves.Count > 1) plot.ShowLegend(Alignment.UpperRight);
        var directory = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (directory is not null) Directory.CreateDirectory(directory);
        plot.SavePng(pngPath, width, height);
    }
}
