using Dllm.Config;
using Dllm.Models.Layers;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// LLaDA2.0 (LLaDA2MoeModelLM) and Ling 2.0 (BailingMoeV2ForCausalLM), one architecture under two
/// names: pre-norm decoder layers whose attention has one fused query_key_value projection, per-head
/// RMSNorm on queries and keys and rotary positions on part of each head; the first
/// first_k_dense_replace layers have a dense SwiGLU MLP, the rest a sparse mixture of experts with
/// sigmoid, group-limited routing plus always-on shared experts.
/// </summary>
/// <remarks>
/// The tree, in checkpoint names: model.word_embeddings; model.layers.N.{input_layernorm,
/// attention.{query_key_value, dense, query_layernorm, key_layernorm}, post_attention_layernorm, mlp};
/// mlp is {gate,up,down}_proj in dense layers and {gate.weight, gate.expert_bias, experts.E.*,
/// shared_experts.*} in sparse ones; model.norm; lm_head unless tied.
/// </remarks>
public sealed class LLaDA2Moe : CausalLM
{
    [ComponentName(Name = "model")] private readonly LLaDA2MoeModel _model;
    [ComponentName(Name = "lm_head")] private readonly Linear? _lmHead;

    internal LLaDA2Moe(ModelConfig config, Placement at) : base(nameof(LLaDA2Moe), config, at)
    {
        _model = new LLaDA2MoeModel(config, at);
        if (!config.TieWordEmbeddings) _lmHead = new Linear(config.HiddenSize, config.VocabSize, false, at);
        RegisterComponents();
    }

    public override Embedding Embeddings => _model.WordEmbeddings;
    public override Parameter OutputWeight => _lmHead?.Weight ?? _model.WordEmbeddings.Weight;

    private protected override Tensor Decode(Tensor h, LayerContext ctx)
    {
        foreach (var layer in _model.Layers) h = layer.Forward(h, ctx);
        return _model.Norm.forward(h);
    }
}

/// <summary>The "model." part: embeddings, decoder layers, final norm.</summary>
internal sealed class LLaDA2MoeModel : nn.Module
{
    [ComponentName(Name = "word_embeddings")] private readonly Embedding _wordEmbeddings;
    [ComponentName(Name = "layers")] private readonly TorchSharp.Modules.ModuleList<LLaDA2MoeDecoderLayer> _layers = new();
    [ComponentName(Name = "norm")] private readonly RmsNorm _norm;

    public LLaDA2MoeModel(ModelConfig c, Placement at) : base(nameof(LLaDA2MoeModel))
    {
        _wordEmbeddings = new Embedding(c.VocabSize, c.HiddenSize, at);
        for (var i = 0; i < c.NumLayers; i++) _layers.Add(new LLaDA2MoeDecoderLayer(c, i, at));
        _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        RegisterComponents();
    }

    public Embedding WordEmbeddings => _wordEmbeddings;
    public TorchSharp.Modules.ModuleList<LLaDA2MoeDecoderLayer> Layers => _layers;
    public RmsNorm Norm => _norm;
}

/// <summary>h += attn(norm(h)); h += mlp(norm(h)), the mlp dense or sparse by layer.</summary>
internal sealed class LLaDA2MoeDecoderLayer : nn.Module
{
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm _inputNorm;
    [ComponentName(Name = "attention")] private readonly LLaDA2MoeAttention _attention;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm _postNorm;
    [ComponentName(Name = "mlp")] private readonly nn.Module<Tensor, Tensor> _mlp;

    public LLaDA2MoeDecoderLayer(ModelConfig c, int layer, Placement at) : base(nameof(LLaDA2MoeDecoderLayer))
    {
        _inputNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        _attention = new LLaDA2MoeAttention(c, layer, at);
        _postNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        _mlp = c.IsMoeLayer(layer) ? new LLaDA2MoeSparseBlock(c, at) : new SwiGlu(c.HiddenSize, c.IntermediateSize, at);
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

/// <summary>
/// Attention with one query_key_value projection whose rows are [all Q heads | all K heads | all V
/// heads], query/key RMSNorm per head before (partial) RoPE, and a "dense" output projection.
/// </summary>
internal sealed class LLaDA2MoeAttention : nn.Module
{
    [ComponentName(Name = "query_key_value")] private readonly Linear _qkv;
    [ComponentName(Name = "dense")] private readonly Linear _dense;
    [ComponentName(Name = "query_layernorm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "key_layernorm")] private readonly RmsNorm? _kNorm;
    private readonly int _layer, _heads, _kvHeads, _headDim;

    public LLaDA2MoeAttention(ModelConfig c, int layer, Placement at) : base(nameof(LLaDA2MoeAttention))
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

    public Tensor Forward(Tensor x, LayerContext ctx)
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

/// <summary>
/// The sparse MLP: routed SwiGLU experts (their weighted sum in fp32) plus unscaled shared expert(s).
/// Tokens are grouped by expert so each expert runs once per forward, on the rows routed to it only.
/// </summary>
internal sealed class LLaDA2MoeSparseBlock : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate")] private readonly LLaDA2MoeRouter _router;
    [ComponentName(Name = "experts")] private readonly TorchSharp.Modules.ModuleList<SwiGlu> _experts = new();
    [ComponentName(Name = "shared_experts")] private readonly SwiGlu? _shared;
    private readonly int _topK;

    public LLaDA2MoeSparseBlock(ModelConfig c, Placement at) : base(nameof(LLaDA2MoeSparseBlock))
    {
        var moe = c.Moe!;
        _topK = moe.NumExpertsPerToken;
        _router = new LLaDA2MoeRouter(c, at);
        for (var e = 0; e < moe.NumExperts; e++) _experts.Add(new SwiGlu(c.HiddenSize, moe.MoeIntermediateSize, at));
        // As the official block: built whenever num_shared_experts is stated, so 0 gives a zero-width expert
        // (empty tensors a saved checkpoint holds) that adds nothing.
        if (moe.NumSharedExperts is not null) _shared = new SwiGlu(c.HiddenSize, moe.SharedExpertIntermediateSize, at);
        RegisterComponents();
    }

    public LLaDA2MoeRouter Router => _router;
    public TorchSharp.Modules.ModuleList<SwiGlu> Experts => _experts;
    public SwiGlu? Shared => _shared;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var flat = x.reshape(-1, shape[^1]);                                     // [N, H]
        var (weights, experts) = _router.Route(flat);                             // [N, k]
        // Sort the N*k (token, expert) pairs by expert, so each expert's rows are one contiguous run.
        var assignment = experts.reshape(-1);                                     // [N*k], pair i is token i / k
        var order = assignment.argsort();
        var rows = order.div(_topK, rounding_mode: RoundingMode.floor);           // token of each sorted pair
        // The forward's one read back to the host, unavoidable for a sparse MoE without a grouped-matmul
        // kernel: the run lengths, so each expert multiplies only its own rows.
        var counts = assignment.bincount(null, _experts.Count).cpu().data<long>().ToArray();
        var inputs = flat.index_select(0, rows);                                  // [N*k, H], grouped by expert
        var outputs = new List<Tensor>(_experts.Count);
        long start = 0;
        for (var e = 0; e < counts.Length; start += counts[e], e++)
            if (counts[e] > 0) outputs.Add(_experts[e].forward(inputs.narrow(0, start, counts[e])));
        var mixed = cat(outputs, 0).to_type(ScalarType.Float32) * weights.reshape(-1).index_select(0, order).unsqueeze(1);
        var routed = zeros(flat.shape[0], shape[^1], dtype: ScalarType.Float32, device: x.device).index_add_(0, rows, mixed, 1);
        var output = routed.to_type(x.dtype);
        if (_shared is not null) output = output + _shared.forward(flat);
        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The router ("mlp.gate"): fp32 sigmoid scores; the expert bias steers only the choice of experts
/// (group-limited top-k over the sum of each group's two best biased scores), while the mixing
/// weights are the unbiased scores of the chosen experts, renormalised and scaled.
/// </summary>
internal sealed class LLaDA2MoeRouter : nn.Module
{
    private readonly Parameter weight;
    private readonly MoeSettings _moe;

    public LLaDA2MoeRouter(ModelConfig c, Placement at) : base(nameof(LLaDA2MoeRouter))
    {
        _moe = c.Moe!;
        weight = at.Empty(_moe.NumExperts, c.HiddenSize);
        RegisterComponents();
        // A persistent buffer, not a parameter: aux-loss-free balancing adjusts it outside the gradient.
        register_buffer("expert_bias", zeros(_moe.NumExperts, dtype: ScalarType.Float32, device: at.Device), persistent: true);
    }

    public Parameter Weight => weight;
    public Tensor ExpertBias => get_buffer("expert_bias")!;

    /// <summary>x [N, H] -> (weights [N, k] fp32, expert ids [N, k]).</summary>
    public (Tensor Weights, Tensor Experts) Route(Tensor x)
    {
        using var scope = NewDisposeScope();
        var n = x.shape[0];
        int experts = _moe.NumExperts, groups = _moe.NumGroups, k = _moe.NumExpertsPerToken;
        var scores = nn.functional.linear(x.to_type(ScalarType.Float32), weight.to_type(ScalarType.Float32)).sigmoid(); // [N, E]
        var biased = scores + ExpertBias;
        var choice = biased;
        if (groups > 1 && _moe.TopKGroups < groups)
        {
            var perGroup = experts / groups;
            var groupScores = biased.view(n, groups, perGroup).topk(Math.Min(2, perGroup), dim: -1).values.sum(-1); // [N, G]
            var keptGroups = groupScores.topk(_moe.TopKGroups, dim: -1, sorted: false).indexes;                       // [N, kg]
            var groupMask = zeros(n, groups, dtype: ScalarType.Bool, device: x.device).scatter_(1, keptGroups, ones_like(keptGroups, dtype: ScalarType.Bool));
            var expertMask = groupMask.unsqueeze(-1).expand(n, groups, perGroup).reshape(n, experts);
            choice = biased.masked_fill(expertMask.logical_not(), double.NegativeInfinity);
        }
        var chosen = choice.topk(k, dim: -1).indexes;                 // [N, k]
        var w = scores.gather(1, chosen);                             // unbiased scores
        if (_moe.NormTopKProb && k > 1) w = w / (w.sum(-1, keepdim: true) + 1e-20);
        w = w * _moe.RoutedScalingFactor;
        return (w.MoveToOuterDisposeScope(), chosen.MoveToOuterDisposeScope());
    }
}
