using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>This machine's dense matmul throughput: the ceiling any model step can reach.</summary>
public static class MatmulCeiling
{
    public static double GflopsPerSecond(ScalarType dtype, int n = 1024, int repeats = 5)
    {
        TorchRuntime.EnsureLoaded();
        using var a = randn(n, n).to_type(dtype);
        using var b = randn(n, n).to_type(dtype);
        var seconds = Timing.MedianSeconds(repeats, () =>
        {
            using var c = a.matmul(b);
        });
        return 2.0 * n * n * n / seconds / 1e9;
    }

    public static void Print(BenchArgs args)
    {
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine("| dtype | matmul 1024x1024x1024 GFLOP/s (median) |");
        Console.WriteLine("|---|---|");
        foreach (var t in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            Console.WriteLine($"| {TorchRuntime.DTypeName(t)} | {GflopsPerSecond(t, repeats: args.Repeats):F0} |");
    }
}
