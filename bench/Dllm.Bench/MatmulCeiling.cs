using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>This machine's dense matmul and weight-streaming throughput: the ceilings model steps are measured
/// against. Each is the fastest of at least 11 runs, so a momentarily busy machine does not lower the bar.</summary>
public static class MatmulCeiling
{
    public static double GflopsPerSecond(ScalarType dtype, int n = 1024, int repeats = 5)
    {
        TorchRuntime.EnsureLoaded();
        using var a = randn(n, n).to_type(dtype);
        using var b = randn(n, n).to_type(dtype);
        var seconds = Timing.FastestSeconds(Math.Max(repeats, 11), () =>
        {
            using var c = a.matmul(b);
        });
        return 2.0 * n * n * n / seconds / 1e9;
    }

    /// <summary>
    /// Weight-streaming rate in GB/s of a matrix-vector product over a 64 MB matrix in the given dtype:
    /// what a batch-1 decode step does to every weight, so it bounds decode tokens/s.
    /// </summary>
    public static double MatvecGigabytesPerSecond(ScalarType dtype, int repeats = 5)
    {
        TorchRuntime.EnsureLoaded();
        var rows = dtype == ScalarType.Float32 ? 32768 : 65536;
        using var w = randn(rows, 512).to_type(dtype);
        using var x = randn(1, 512).to_type(dtype);
        var seconds = Timing.FastestSeconds(Math.Max(repeats, 11), () =>
        {
            using var y = nn.functional.linear(x, w);
        });
        return w.numel() * w.ElementSize / seconds / 1e9;
    }

    public static void Print(BenchArgs args)
    {
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine("| dtype | matmul 1024x1024x1024 GFLOP/s (fastest of 11+) |");
        Console.WriteLine("|---|---|");
        foreach (var t in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            Console.WriteLine($"| {TorchRuntime.DTypeName(t)} | {GflopsPerSecond(t, repeats: args.Repeats):F0} |");
        foreach (var t in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            Console.WriteLine($"matrix-vector weight streaming, {TorchRuntime.DTypeName(t)}: {MatvecGigabytesPerSecond(t, args.Repeats):F1} GB/s");
    }
}
