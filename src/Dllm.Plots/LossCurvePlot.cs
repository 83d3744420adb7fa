using ScottPlot;

namespace Dllm.Plots;

/// <summary>
/// Training loss against step for one or more runs, with the block-size phases of the first run
/// marked by vertical lines labelled "B=..". Raw losses are faint; the smoothed trend is drawn on top.
/// </summary>
public static class LossCurvePlot
{
    public static void Write(IReadOnlyList<TrainingCurve> curves, string pngPath, string title = "training loss", int width = 1000, int height = 560)
    {
        if (curves.Count == 0) throw new DllmPlotException("nothing to plot");
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < curves.Count; i++)
        {
            var c = curves[i];
            var color = palette.GetColor(i);
            var raw = plot.Add.ScatterLine(c.Steps, c.Loss);
            raw.Color = color.WithAlpha(0.25);
            raw.LineWidth = 1;
            var trend = plot.Add.ScatterLine(c.Steps, c.Smoothed());
            trend.Color = color;
            trend.LineWidth = 2;
            trend.LegendText = c.Label;
        }
        var first = curves[0];
        var top = first.Loss.Where(double.IsFinite).DefaultIfEmpty(1).Max();
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
        plot.YLabel("loss (NELBO estimate per token)");
        if (curves.Count > 1) plot.ShowLegend(Alignment.UpperRight);
        var directory = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (directory is not null) Directory.CreateDirectory(directory);
        plot.SavePng(pngPath, width, height);
    }
}
