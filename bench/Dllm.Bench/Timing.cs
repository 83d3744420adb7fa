using System.Diagnostics;

namespace Dllm.Bench;

/// <summary>Runs an action several times after a warm-up and reports the median wall time.</summary>
public static class Timing
{
    /// <summary>
    /// The fastest of at least <paramref name="repeats"/> runs (and at least a second of them), after a second of
    /// warm-up: for ceilings (what the machine can do at best), where a median would let a cold start (this
    /// machine needs a moment to reach full clock) or a noisy neighbour lower the bar that MFU is measured against.
    /// </summary>
    public static double FastestSeconds(int repeats, Action action)
    {
        var warm = Stopwatch.StartNew();
        do action(); while (warm.Elapsed.TotalSeconds < 1);
        var best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (var i = 0; i < repeats || total.Elapsed.TotalSeconds < 1; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>
    /// A switch measured both ways, the two settings alternating run by run after one warm-up run of each (so a
    /// drifting machine speed moves both alike): the medians of everything <paramref name="measure"/> returned with
    /// the switch off and on.
    /// </summary>
    public static (double Off, double On) AlternatingMedians(int repeats, Func<bool, IEnumerable<double>> measure)
    {
        var times = new Dictionary<bool, List<double>> { [false] = [], [true] = [] };
        for (var i = -1; i < repeats; i++)
            foreach (var on in new[] { false, true })
            {
                var seconds = measure(on).ToList();
                if (i >= 0) times[on].AddRange(seconds);
            }
        return (Median(times[false]), Median(times[true]));
    }

    /// <summary>The median of measured values (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static double MedianSeconds(int repeats, Action action, int warmup = 1)
    {
        for (var i = 0; i < warmup; i++) action();
        var times = new double[repeats];
        for (var i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
    }

    public static string Machine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return $"{cpu ?? "unknown CPU"}, {Environment.ProcessorCount} cores, {TorchSharp.torch.get_num_threads()} torch threads, .NET {Environment.Version}";
    }
}
