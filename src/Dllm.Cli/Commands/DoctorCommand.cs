using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Cli.Commands;

internal static class DoctorCommand
{
    public static Command Build()
    {
        var json = SharedOptions.Json();
        var command = new Command("doctor",
            "Check that libtorch loads and computes here: runtime versions, threads, CUDA, and a known matmul in fp32 and bf16.")
        {
            json,
        };
        command.SetAction(p =>
        {
            TorchRuntime.EnsureLoaded();
            using var a = tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
            using var b = tensor(new float[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
            using var c = a.matmul(b);
            using var cb = a.to_type(ScalarType.BFloat16).matmul(b.to_type(ScalarType.BFloat16)).to_type(ScalarType.Float32);
            var expected = new float[] { 19, 22, 43, 50 };
            var fp32Ok = c.data<float>().ToArray().SequenceEqual(expected);
            var bf16Ok = cb.data<float>().ToArray().SequenceEqual(expected);
            var report = new JsonObject
            {
                ["dotnet"] = Environment.Version.ToString(),
                ["os"] = RuntimeInformation.OSDescription,
                ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
                ["libtorch_loaded"] = true,
                ["threads"] = get_num_threads(),
                ["cuda_available"] = cuda.is_available(),
                ["matmul_fp32_ok"] = fp32Ok,
                ["matmul_bf16_ok"] = bf16Ok,
            };
            if (p.GetValue(json)) Output.WriteJson(p, report);
            else foreach (var (k, v) in report) Output.Out(p).WriteLine($"{k,-16} {v}");
            return fp32Ok && bf16Ok ? 0 : 1;
        });
        return command;
    }
}
