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
/// <remarks>
/// This class holds what every family shares (the defaults and checks of the arguments, the rotary
/// angles, the cache commit, the LM head); each family file (<see cref="Llama"/>,
/// <see cref="LLaDA2Moe"/>) holds its whole module tree and its decoder stack.
/// </remarks>
public abstract class CausalLM : nn.Module
{
    private readonly Rotary _rotary;

    private protected CausalLM(string name, ModelConfig config, Placement at) : base(name)
    {
        Config = config;
        Placement = at;
        _rotary = new Rotary(config, at.Device);
    }

    public ModelConfig Config { get; }
    public Placement Placement { get; }

    /// <summary>The token embedding table [V, H].</summary>
    public abstract Embedding Embeddings { get; }

    /// <summary>The LM head [V, H]: lm_head.weight, or the embedding table when the two are tied.</summary>
    public abstract Parameter OutputWeight { get; }

    /// <summary>Token embeddings [B, T, H] (so callers can perturb them, e.g. masked-embedding noise).</summary>
    public Tensor Embed(Tensor tokens) => Embeddings.forward(tokens);

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

        var h = Decode(embeddings, ctx);
        cache?.Commit(commit < 0 ? t : Math.Min(commit, t));
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>fp32 logits [.., V] from final hidden states.</summary>
    public Tensor Logits(Tensor hidden) => nn.functional.linear(hidden, OutputWeight).to_type(ScalarType.Float32);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _rotary.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>The family's decoder stack: h [B, T, H] through every layer, then the final norm.</summary>
    private protected abstract Tensor Decode(Tensor h, LayerContext ctx);
}

/// <summary>Builds the module tree of a config's family, with the family's tensor names. Parameters are uninitialised.</summary>
public static class ModelFactory
{
    public static CausalLM Create(ModelConfig config, Placement at)
    {
        Runtime.TorchRuntime.EnsureLoaded();
        return config.Family switch
        {
            ModelFamily.Llama or ModelFamily.Qwen2 or ModelFamily.Qwen3 => new Llama(config, at),
            ModelFamily.BailingMoe => new LLaDA2Moe(config, at),
            _ => throw new DllmException($"no model class for family {config.Family}"),
        };
    }
}

/// <summary>
/// Initial values for a model trained from scratch (HF's Llama init: N(0, std) for matrices, std being the
/// config's initializer_range or 0.02, ones for norm gains, zeros for biases and router bias). Loading a
/// checkpoint never calls this.
/// </summary>
public static class ModelInit
{
    public const double DefaultStd = 0.02;

    public static void Randomize(CausalLM model, long seed, double? std = null)
    {
        double sigma = std ?? model.Config.Raw["initializer_range"]?.GetValue<double>() ?? DefaultStd;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed, model.Placement.Device);
        foreach (var (name, tensor) in model.state_dict())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal) || name.EndsWith("layernorm.weight", StringComparison.Ordinal))
                tensor.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith("expert_bias", StringComparison.Ordinal))
                tensor.zero_();
            else
                tensor.normal_(0.0, sigma, generator);
        }
    }
}
