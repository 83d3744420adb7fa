using Dllm.Config;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>
/// Ling 2.0 / LLaDA2.0 attention: one query_key_value projection whose rows are [all Q heads | all K
/// heads | all V heads], per-head query/key RMSNorm before (partial) RoPE, and a "dense" output.
/// </summary>
public sealed class FusedQkvAttention : AttentionBlock
{
    [ComponentName(Name = "query_key_value")] private readonly Linear _qkv;
    [ComponentName(Name = "dense")] private readonly Linear _dense;
    [ComponentName(Name = "query_layernorm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "key_layernorm")] private readonly RmsNorm? _kNorm;
    private readonly int _layer, _heads, _kvHeads, _headDim;

    public FusedQkvAttention(ModelConfig c, int layer, Placement at) : base(nameof(FusedQkvAttention))
    {
        (_layer, _heads, _kvHeads, _headDim) = (layer, c.NumHeads, c.NumKvHeads, c.HeadDim);
        _qkv = new Linear(c.HiddenSize, (c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim, c.QkvBias, at);
        _dense = new Linear(c.NumHeads * c.HeadDim, c.HiddenSize, c.OutputBias, at);
        if (c.QkNorm)
        {
            _qNorm = new RmsNorm(c.HeadDim, c.RmsNormEps, at);
            _kNorm = new RmsNorm(c.HeadDim, c.RmsNormEps, at);
        }
        RegisterComponents();
    }

    public override Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var qkv = _qkv.forward(x).view(b, t, _heads + 2 * _kvHeads, _headDim);
        var q = qkv.narrow(2, 0, _heads).transpose(1, 2);                         // [B, H, T, D]
        var k = qkv.narrow(2, _heads, _kvHeads).transpose(1, 2);                  // [B, Hkv, T, D]
        var v = qkv.narrow(2, _heads + _kvHeads, _kvHeads).transpose(1, 2);
        if (_qNorm is not null) { q = _qNorm.forward(q); k = _kNorm!.forward(k); }
        q = Rotary.Apply(q, ctx.Cos, ctx.Sin);
        k = Rotary.Apply(k, ctx.Cos, ctx.Sin);
        return _dense.forward(AttentionKernel.Attend(q, k, v.contiguous(), ctx, _layer)).MoveToOuterDisposeScope();
    }
}
