using Dllm.Attention;
using Dllm.Config;
using Dllm.Models.Layers;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// A decoder-only transformer that maps tokens to logits, nothing else: no loss, no sampling, no
/// tokenizer. The attention mask and the KV cache are arguments, so AR and diffusion use the same
/// weights with different masks, and one model can serve many requests. Submodule names equal the
/// checkpoint's tensor names ("model.layers.3.mlp.up_proj.weight"), so loading is a name-for-name copy.
/// </summary>
public sealed class CausalLM : nn.Module
{
    private readonly Backbone _model;
    private readonly Linear? _lmHead;
    private readonly Rotary _rotary;

    internal CausalLM(ModelConfig config, Backbone backbone, Placement at) : base(nameof(CausalLM))
    {
        Config = config;
        Placement = at;
        _model = backbone;
        _rotary = new Rotary(config);
        register_module("model", _model);
        if (!config.TieWordEmbeddings)
        {
            _lmHead = new Linear(config.HiddenSize, config.VocabSize, false, at);
            register_module("lm_head", _lmHead);
        }
    }

    // Children are registered by hand under their checkpoint names; stop TorchSharp from also
    // registering the backing fields by reflection.
    protected override void RegisterComponents() { }

    public ModelConfig Config { get; }
    public Placement Placement { get; }
    public Embedding Embeddings => _model.Embed;
    public Parameter OutputWeight => _lmHead?.Weight ?? _model.Embed.Weight;
    public IReadOnlyList<DecoderLayer> Layers => _model.Layers;

    /// <summary>Token embeddings [B, T, H] (so callers can perturb them, e.g. masked-embedding noise).</summary>
    public Tensor Embed(Tensor tokens) => _model.Embed.forward(tokens);

    /// <summary>
    /// tokens [B, T] -> fp32 logits [B, T', V] where T' = T, or <paramref name="logitsForLast"/> when &gt; 0.
    /// positions [B, T] (default: cache length + 0..T-1); mask: bool, true = may attend, shaped [T, S],
    /// [B, T, S] or [B, 1, T, S] with S = cache length + T (default: causal). With a cache, the first
    /// <paramref name="commit"/> new positions (default all) are kept in it after the forward.
    /// </summary>
    public Tensor Forward(Tensor tokens, Tensor? positions = null, Tensor? mask = null, KvCache? cache = null,
        long commit = -1, long logitsForLast = 0) =>
        ForwardEmbeddings(Embed(tokens), positions, mask, cache, commit, logitsForLast);

    public Tensor ForwardEmbeddings(Tensor embeddings, Tensor? positions = null, Tensor? mask = null, KvCache? cache = null,
        long commit = -1, long logitsForLast = 0)
    {
        using var scope = NewDisposeScope();
        var h = Hidden(embeddings, positions, mask, cache, commit);
        var t = h.shape[1];
        if (logitsForLast > 0 && logitsForLast < t) h = h.narrow(1, t - logitsForLast, logitsForLast);
        return Logits(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The final-normed hidden states [B, T, H] (see <see cref="Forward"/> for the arguments). Callers
    /// that need logits for only part of the sequence slice these and call <see cref="Logits"/>.
    /// </summary>
    public Tensor Hidden(Tensor embeddings, Tensor? positions = null, Tensor? mask = null, KvCache? cache = null, long commit = -1)
    {
        using var scope = NewDisposeScope();
        long b = embeddings.shape[0], t = embeddings.shape[1];
        var past = cache?.Length ?? 0;
        positions ??= arange(past, past + t, device: embeddings.device).unsqueeze(0).expand(b, t);
        if (positions.dim() == 1) positions = positions.unsqueeze(0).expand(b, t);
        mask ??= AttentionMasks.Causal(t, past, embeddings.device);
        var mask4 = mask.dim() switch
        {
            2 => mask.unsqueeze(0).unsqueeze(0),
            3 => mask.unsqueeze(1),
            4 => mask,
            _ => throw new ArgumentException($"mask must be 2-D, 3-D or 4-D, got {mask.dim()}-D"),
        };
        if (mask4.shape[^1] != past + t || mask4.shape[^2] != t)
            throw new ArgumentException($"mask is [{string.Join(", ", mask4.shape)}] but the forward has {t} queries over {past + t} keys");
        var (cos, sin) = _rotary.Angles(positions, embeddings.dtype);
        var ctx = new LayerContext(cos, sin, AttentionKernel.FoldMask(mask4, Config.QueriesPerKvHead), cache);

        var h = embeddings;
        foreach (var layer in _model.Layers) h = layer.Forward(h, ctx);
        h = _model.Norm.forward(h);
        cache?.Commit(commit < 0 ? t : Math.Min(commit, t));
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>fp32 logits [.., V] from final hidden states.</summary>
    public Tensor Logits(Tensor hidden) => nn.functional.linear(hidden, OutputWeight).to_type(ScalarType.Float32);
}

/// <summary>The "model." part: embeddings, decoder layers and the final norm.</summary>
internal sealed class Backbone : nn.Module
{
    public Backbone(string embeddingName, Embedding embed, IEnumerable<DecoderLayer> layers, RmsNorm norm) : base(nameof(Backbone))
    {
        Embed = embed;
        var list = layers.ToArray();
        Layers = list;
        LayerList = new TorchSharp.Modules.ModuleList<DecoderLayer>(list);
        Norm = norm;
        register_module(embeddingName, Embed);
        register_module("layers", LayerList);
        register_module("norm", Norm);
    }

    // Children are registered by hand under their checkpoint names; stop TorchSharp from also
    // registering the backing fields by reflection.
    protected override void RegisterComponents() { }

    public Embedding Embed { get; }
    public TorchSharp.Modules.ModuleList<DecoderLayer> LayerList { get; }
    public IReadOnlyList<DecoderLayer> Layers { get; }
    public RmsNorm Norm { get; }
}
