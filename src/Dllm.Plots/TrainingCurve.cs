using System.Text.Json.Nodes;

namespace Dllm.Plots;

/// <summary>
/// One run's per-step numbers as read back from its metrics.jsonl: the training loss, the block size, and the
/// validation metric (a "valid_..." field on the steps it was taken after; empty for runs that logged none).
/// </summary>
public sealed record TrainingCurve(string Label, double[] Steps, double[] Loss, int[] BlockSize,
    string? ValidationMetric = null, double[]? ValidationSteps = null, double[]? Validation = null)
{
    public static TrainingCurve Read(string runDirectory, string? label = null)
    {
        var path = Path.Combine(runDirectory, "metrics.jsonl");
        if (!File.Exists(path)) throw new DllmPlotException($"{runDirectory} has no metrics.jsonl: is it a training run folder?");
        var all = File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var rows = all.Where(n => n["loss"] is not null).ToList();
        if (rows.Count == 0) throw new DllmPlotException($"{path} holds no finite losses");
        var metric = all.SelectMany(n => n.Select(kv => kv.Key)).FirstOrDefault(k => k.StartsWith("valid_", StringComparison.Ordinal));
        var validated = metric is null ? [] : all.Where(n => n[metric] is not null).ToList();
        return new TrainingCurve(label ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDirectory))),
            rows.Select(r => r["step"]!.GetValue<double>()).ToArray(),
            rows.Select(r => r["loss"]!.GetValue<double>()).ToArray(),
            rows.Select(r => r["block_size"]?.GetValue<int>() ?? 1).ToArray(),
            metric,
            // Validation after step s is the score of the weights that s + 1 steps made.
            validated.Select(r => r["step"]!.GetValue<double>() + 1).ToArray(),
            validated.Select(r => r[metric!]!.GetValue<double>()).ToArray());
    }

    /// <summary>Exponential moving average, so that the noisy per-step loss shows its trend.</summary>
    public double[] Smoothed(double alpha = 0.1)
    {
        var result = new double[Loss.Length];
        for (var i = 0; i < Loss.Length; i++) result[i] = i == 0 ? Loss[0] : alpha * Loss[i] + (1 - alpha) * result[i - 1];
        return result;
    }

    /// <summary>Steps where the block size changes, with the new size: the schedule's phases.</summary>
    public IEnumerable<(double Step, int BlockSize)> PhaseStarts()
    {
        for (var i = 0; i < BlockSize.Length; i++)
            if (i == 0 || BlockSize[i] != BlockSize[i - 1]) yield return (Steps[i], BlockSize[i]);
    }
}

public sealed class DllmPlotException(string message) : Exception(message);
