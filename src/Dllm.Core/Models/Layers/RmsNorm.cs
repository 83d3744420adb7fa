using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>RMSNorm over the last dim, computed in fp32 and cast back (as the HF reference does for bf16).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public RmsNorm(long dim, double eps, Placement at) : base(nameof(RmsNorm))
    {
        weight = at.Empty(dim);
        _eps = eps;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to_type(ScalarType.Float32);
        var normed = x32 * x32.pow(2).mean([-1], keepdim: true).add(_eps).rsqrt();
        return (weight * normed.to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}
