using Dllm.Config;
using Dllm.Models.Layers;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Llama, Qwen2 and Qwen3 (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM): pre-norm decoder
/// layers of grouped-query attention with rotary positions and a SwiGLU MLP. The three differ only
/// in options the config sets: a bias on q/k/v (Qwen2; Llama's attention_bias, which also biases
/// o_proj), a per-head RMSNorm on queries and keys before RoPE (Qwen3), and a head_dim that need
/// not be hidden_size / heads (Qwen3).
/// </summary>
/// <remarks>
/// The tree, in checkpoint names: model.embed_tokens; model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
/// self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}; model.norm; lm_head unless tied.
/// </remarks>
public sealed class Llama : CausalLM
{
    [ComponentName(Name = "model")] private readonly LlamaModel _model;
    [ComponentName(Name = "lm_head")] private readonly Linear? _lmHead;

    internal Llama(ModelConfig config, Placement at) : base(nameof(Llama), config, at)
    {
        _model = new LlamaModel(config, at);
        if (!config.TieWordEmbeddings) _lmHead = new Linear(config.HiddenSize, config.VocabSize, false, at);
        RegisterComponents();
    }

    public override Embedding Embeddings => _model.EmbedTokens;
    public override Parameter OutputWeight => _lmHead?.Weight ?? _model.EmbedTokens.Weight;

    private protected override Tensor Decode(Tensor h, LayerContext ctx)
    {
        foreach (var layer in _model.Layers) h = layer.Forward(h, ctx);
        return _model.Norm.forward(h);
    }
}

/// <summary>The "model." part: embeddings, decoder layers, final norm.</summary>
internal sealed class LlamaModel : nn.Module
{
    [ComponentName(Name = "embed_tokens")] private readonly Embedding _embedTokens;
    [ComponentName(Name = "layers")] private readonly TorchSharp.Modules.ModuleList<LlamaDecoderLayer> _layers = new();
    [ComponentName(Name = "norm")] private readonly RmsNorm _norm;

    public LlamaModel(ModelConfig c, Placement at) : base(nameof(LlamaModel))
    {
        _embedTokens = new Embedding(c.VocabSize, c.HiddenSize, at);
        for (var i = 0; i < c.NumLayers; i++) _layers.Add(new LlamaDecoderLayer(c, i, at));
        _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        RegisterComponents();
    }

    public Embedding EmbedTokens => _embedTokens;
    public TorchSharp.Modules.ModuleList<LlamaDecoderLayer> Layers => _layers;
    public RmsNorm Norm => _norm;
}

/// <summary>h += attn(norm(h)); h += mlp(norm(h)).</summary>
internal sealed class LlamaDecoderLayer : nn.Module
{
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm _inputNorm;
    [ComponentName(Name = "self_attn")] private readonly LlamaAttention _attention;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm _postNorm;
    [ComponentName(Name = "mlp")] private readonly SwiGlu _mlp;

    public LlamaDecoderLayer(ModelConfig c, int layer, Placement at) : base(nameof(LlamaDecoderLayer))
    {
        _inputNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        _attention = new LlamaAttention(c, layer, at);
        _postNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        _mlp = new SwiGlu(c.HiddenSize, c.IntermediateSize, at);
        RegisterComponents();
    }

    public Tensor Forward(Tensor h, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        h = h + _attention.Forward(_inputNorm.forward(h), ctx);
        h = h + _mlp.forward(_postNorm.forward(h));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>Grouped-query self-attention with separate q/k/v/o projections.</summary>
internal sealed class LlamaAttention : nn.Module
{
    [ComponentName(Name = "q_proj")] private readonly Linear _q;
    [ComponentName(Name = "k_proj")] private readonly Linear _k;
    [ComponentName(Name = "v_proj")] private readonly Linear _v;
    [ComponentName(Name = "o_proj")] private readonly Linear _o;
    [ComponentName(Name = "q_norm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "k_norm")] private readonly RmsNorm? _kNorm;
    private readonly int _layer, _heads, _kvHeads, _headDim;

    public LlamaAttention(ModelConfig c, int layer, Placement at) : base(nameof(LlamaAttention))
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

    public Tensor Forward(Tensor x, LayerContext ctx)
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
