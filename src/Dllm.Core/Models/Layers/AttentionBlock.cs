using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>Self-attention of one decoder layer: projections, optional q/k norm, RoPE, then the kernel.</summary>
public abstract class AttentionBlock : nn.Module
{
    protected AttentionBlock(string name) : base(name) { }

    public abstract Tensor Forward(Tensor x, LayerContext ctx);
}
