using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>How to place a loaded model. DType null keeps fp32 on CPU (exact reference numerics).</summary>
public sealed record LoadOptions(string Device = "cpu", string? DType = null)
{
    public Device ResolveDevice() => TorchRuntime.ParseDevice(Device);
    public ScalarType ResolveDType() => DType is null ? ScalarType.Float32 : TorchRuntime.ParseDType(DType);
}
