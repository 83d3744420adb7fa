using System.Runtime.InteropServices;
using TorchSharp;

namespace Dllm.Runtime;

/// <summary>
/// Loads libtorch once per process and turns TorchSharp's load failure into the real cause.
/// TorchSharp reports any dlopen failure as "doesn't contain a reference to libtorch-cpu-linux-x64",
/// even when the package is there and the loader rejected a symbol version.
/// </summary>
public static class TorchRuntime
{
    private static readonly Lock Gate = new();
    private static bool _loaded;

    public static void EnsureLoaded()
    {
        if (_loaded) return;
        lock (Gate)
        {
            if (_loaded) return;
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            catch (Exception e)
            {
                throw new DllmException("libtorch could not be loaded: " + DiagnoseNativeLoad(e));
            }
            _loaded = true;
        }
    }

    /// <summary>Parses "cpu", "cuda" or "cuda:N" and checks that the device is usable.</summary>
    public static torch.Device ParseDevice(string name)
    {
        EnsureLoaded();
        var lowered = name.Trim().ToLowerInvariant();
        if (lowered == "cpu") return torch.CPU;
        if (lowered == "cuda" || lowered.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new DllmException($"device '{name}' requested but CUDA is not available (this build uses libtorch-cpu; reference a libtorch-cuda package to run on a GPU)");
            return torch.device(lowered);
        }
        throw new DllmException($"unknown device '{name}': use cpu, cuda or cuda:N");
    }

    /// <summary>Parses a dtype name as used on the command line and in safetensors.</summary>
    public static torch.ScalarType ParseDType(string name) => name.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" or "float" => torch.ScalarType.Float32,
        "bfloat16" or "bf16" => torch.ScalarType.BFloat16,
        "float16" or "fp16" or "f16" or "half" => torch.ScalarType.Float16,
        _ => throw new DllmException($"unknown dtype '{name}': use float32, bfloat16 or float16"),
    };

    public static string DTypeName(torch.ScalarType t) => t switch
    {
        torch.ScalarType.Float32 => "float32",
        torch.ScalarType.BFloat16 => "bfloat16",
        torch.ScalarType.Float16 => "float16",
        _ => t.ToString().ToLowerInvariant(),
    };

    private static string DiagnoseNativeLoad(Exception original)
    {
        // Ask the dynamic loader directly: its message names the missing library or symbol version.
        foreach (var path in CandidateNativePaths())
        {
            if (!File.Exists(path)) continue;
            try
            {
                NativeLibrary.Load(path);
            }
            catch (Exception e)
            {
                var hint = e.Message.Contains("GLIBCXX_", StringComparison.Ordinal)
                    ? " (the system libstdc++ is older than libtorch expects; the build patches libLibTorchSharp.so in its output folder, so rebuild, or run from the build output rather than a copied folder)"
                    : "";
                return $"{e.Message}{hint}";
            }
        }
        var inner = original;
        while (inner.InnerException is not null) inner = inner.InnerException;
        return inner.Message;
    }

    private static IEnumerable<string> CandidateNativePaths()
    {
        var baseDir = AppContext.BaseDirectory;
        var name = OperatingSystem.IsWindows() ? "LibTorchSharp.dll" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "libLibTorchSharp.so";
        yield return Path.Combine(baseDir, name);
        yield return Path.Combine(baseDir, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", name);
        var rid = (OperatingSystem.IsLinux() ? "linux-" : OperatingSystem.IsMacOS() ? "osx-" : "win-") + RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();
        yield return Path.Combine(baseDir, "runtimes", rid, "native", name);
    }
}
