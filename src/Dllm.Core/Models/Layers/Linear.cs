using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>y = x W^T (+ b) with W stored [out, in] as in HF checkpoints. Created uninitialised; see ModelInit.</summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, Placement at) : base(nameof(Linear))
    {
        weight = at.Empty(outFeatures, inFeatures);
        bias = hasBias ? at.Empty(outFeatures) : null;
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public Parameter? Bias => bias;

    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}
