using Dllm.Config;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>Llama / Qwen2 / Qwen3 attention: q_proj, k_proj, v_proj, o_proj (+ q_norm, k_norm for Qwen3).</summary>
public sealed class SplitQkvAttention : AttentionBlock
{
    [ComponentName(Name = "q_proj")] private readonly Linear _q;
    [ComponentName(Name = "k_proj")] private readonly Linear _k;
    [ComponentName(Name = "v_proj")] private readonly Linear _v;
    [ComponentName(Name = "o_proj")] private readonly Linear _o;
    [ComponentName(Name = "q_norm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "k_norm")] private readonly RmsNorm? _kNorm;
    private readonly int _layer, _heads, _kvHeads, _headDim;

    public SplitQkvAttention(ModelConfig c, int layer, Placement at) : base(nameof(SplitQkvAttention))
    {
        (_layer, _heads, _kvHeads, _headDim) = (layer, c.NumHeads, c.NumKvHeads, c.HeadDim);
        _q = new Linear(c.HiddenSize, c.NumHeads * c.HeadDim, c.QkvBias, at);
        _k = new Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, c.QkvBias, at);
        _v = new Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, c.QkvBias, at);
        _o = new Linear(c.NumHeads * c.HeadDim, c.HiddenSize, c.OutputBias, at);
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
        var q = _q.forward(x).view(b, t, _heads, _headDim).transpose(1, 2);     // [B, H, T, D]
        var k = _k.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);   // [B, Hkv, T, D]
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        if (_qNorm is not null) { q = _qNorm.forward(q); k = _kNorm!.forward(k); }
        q = Rotary.Apply(q, ctx.Cos, ctx.Sin);
        k = Rotary.Apply(k, ctx.Cos, ctx.Sin);
        return _o.forward(AttentionKernel.Attend(q, k, v, ctx, _layer)).MoveToOuterDisposeScope();
    }
}
