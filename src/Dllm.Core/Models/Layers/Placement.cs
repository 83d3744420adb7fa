using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>
/// Where and in which dtype parameters are created. Modules allocate uninitialised storage
/// directly there (no fp32 copy first), so a bf16 load of a large model needs bf16 memory only.
/// </summary>
public sealed record Placement(ScalarType DType, Device Device)
{
    public static Placement Cpu32 => new(ScalarType.Float32, CPU);

    public TorchSharp.Modules.Parameter Empty(params long[] shape) =>
        new(empty(shape, dtype: DType, device: Device), requires_grad: true);
}
