using Dllm.Config;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

// The layers every family shares, small enough to read in one sitting: where parameters live,
// Linear and Embedding with HF's [out, in] layout, RMSNorm, SwiGLU, rotary embeddings and the one
// attention kernel. A family file (Llama.cs, LLaDA2Moe.cs) composes these under its checkpoint names.
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

    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}

/// <summary>Token embedding table [vocab, hidden].</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public Embedding(long vocab, long dim, Placement at) : base(nameof(Embedding))
    {
        weight = at.Empty(vocab, dim);
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor tokens) => weight.index_select(0, tokens.reshape(-1)).reshape([.. tokens.shape, weight.shape[1]]);
}

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

/// <summary>down(silu(gate(x)) * up(x)): the FFN of every supported family, and each MoE expert.</summary>
public sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private readonly Linear _gate;
    [ComponentName(Name = "up_proj")] private readonly Linear _up;
    [ComponentName(Name = "down_proj")] private readonly Linear _down;

    public SwiGlu(long hidden, long intermediate, Placement at) : base(nameof(SwiGlu))
    {
        _gate = new Linear(hidden, intermediate, false, at);
        _up = new Linear(hidden, intermediate, false, at);
        _down = new Linear(intermediate, hidden, false, at);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _down.forward(nn.functional.silu(_gate.forward(x)) * _up.forward(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Rotary position embedding, rotate-half convention (HF Llama/Qwen/Bailing), on the first
/// <c>rotaryDim</c> dims of each head (partial rotary when smaller than head_dim).
/// Not a Module: its frequencies are derived from the config, not checkpoint tensors.
/// </summary>
public sealed class Rotary : IDisposable
{
    // Made once on the model's device: uploading it in every forward would be a host-to-device copy per forward.
    private readonly Tensor _invFreq;   // [rotaryDim / 2] fp32

    public Rotary(ModelConfig config, Device device)
    {
        var inv = InverseFrequencies(config.RotaryDim, config.RopeTheta, config.RopeScaling);
        using var scope = NewDisposeScope();
        _invFreq = tensor(inv, dtype: ScalarType.Float64, device: device).to_type(ScalarType.Float32).DetachFromDisposeScope();
    }

    /// <summary>inv_freq[j] = theta^(-2j/d), then the config's rope_scaling rule.</summary>
    private static double[] InverseFrequencies(int rotaryDim, double theta, RopeScaling? scaling)
    {
        var half = rotaryDim / 2;
        var inv = new double[half];
        for (var j = 0; j < half; j++) inv[j] = 1.0 / Math.Pow(theta, 2.0 * j / rotaryDim);
        if (scaling is null) return inv;
        switch (scaling.Type)
        {
            case "linear":
                for (var j = 0; j < half; j++) inv[j] /= scaling.Factor;
                break;
            case "llama3":
                // Llama 3.1: keep high frequencies, divide low ones by factor, interpolate between.
                var oldContext = (double)scaling.OriginalMaxPositionEmbeddings;
                var lowWavelen = oldContext / scaling.LowFreqFactor;
                var highWavelen = oldContext / scaling.HighFreqFactor;
                for (var j = 0; j < half; j++)
                {
                    var wavelen = 2 * Math.PI / inv[j];
                    if (wavelen < highWavelen) continue;
                    if (wavelen > lowWavelen) { inv[j] /= scaling.Factor; continue; }
                    var smooth = (oldContext / wavelen - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                    inv[j] = (1 - smooth) * inv[j] / scaling.Factor + smooth * inv[j];
                }
                break;
        }
        return inv;
    }

    /// <summary>cos and sin for positions [B, T], shaped [B, 1, T, rotaryDim] in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inv = _invFreq.to(positions.device);                                   // no copy when already there
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv;   // [B, T, d/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                           // [B, 1, T, d]
        var cos = emb.cos().to_type(dtype);
        var sin = emb.sin().to_type(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x [B, H, T, D] by the angles; dims past rotaryDim pass through.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var d = cos.shape[^1];
        var rot = d == x.shape[^1] ? x : x.narrow(-1, 0, d);
        var half = d / 2;
        var rotated = cat([rot.narrow(-1, half, half).neg(), rot.narrow(-1, 0, half)], -1);
        var outRot = rot * cos + rotated * sin;
        var result = d == x.shape[^1] ? outRot : cat([outRot, x.narrow(-1, d, x.shape[^1] - d)], -1);
        return result.MoveToOuterDisposeScope();
    }

    public void Dispose() => _invFreq.Dispose();
}

/// <summary>
/// What every layer of one forward shares: RoPE angles for the query positions, the attention mask
/// (already folded for grouped-query attention) and the request's KV cache, if any.
/// </summary>
public sealed record LayerContext(Tensor Cos, Tensor Sin, Tensor FoldedMask, KvCache? Cache);

/// <summary>
/// The single attention path: scaled dot-product attention through libtorch's SDPA with a boolean
/// mask. TorchSharp's SDPA has no GQA argument, so the query heads that share a KV head are folded
/// into the sequence dim ([B, H_kv, rep*T, D]) instead of copying K/V rep times.
/// </summary>
public static class AttentionKernel
{
    /// <summary>
    /// Repeats a [B|1, 1, T, S] mask for the folded query layout [.., rep*T, S]: row r*T + t is query t
    /// of the r-th head in its group. Built once per forward, shared by all layers.
    /// </summary>
    public static Tensor FoldMask(Tensor mask, long queriesPerKvHead) =>
        queriesPerKvHead == 1 ? mask.alias() : mask.repeat(1, 1, queriesPerKvHead, 1);

    /// <summary>q [B, H, T, D] and new k, v [B, H_kv, T, D]; returns [B, T, H*D].</summary>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, LayerContext ctx, int layer)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], d = q.shape[3];
        var hkv = k.shape[1];
        var folded = q.reshape(b, hkv, h / hkv * t, d);                 // [B, H_kv, rep*T, D]
        Tensor o;
        if (ctx.Cache is null) o = nn.functional.scaled_dot_product_attention(folded, k, v, ctx.FoldedMask, 0.0, false);
        else
        {
            var parts = ctx.Cache.Extend(layer, k, v);
            o = parts is [var whole] && whole.Rows.FirstColumn == 0
                ? nn.functional.scaled_dot_product_attention(folded, whole.Keys, whole.Values, ctx.FoldedMask, 0.0, false)
                : Ragged(folded, parts, ctx.FoldedMask);
        }
        var result = o.reshape(b, h, t, d).transpose(1, 2).reshape(b, t, h * d);   // [B, T, H*D]
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One attention call per cache segment (see <see cref="KvCache.RowGroups"/>), each over its rows' key columns from
    /// the segment's first on: the columns left out are masked for those rows anyway, so the result is the one call's
    /// over every column (up to summation order) without their cost.
    /// </summary>
    private static Tensor Ragged(Tensor folded, IReadOnlyList<(RowGroup Rows, Tensor Keys, Tensor Values)> parts, Tensor mask)
    {
        var s = mask.shape[^1];
        var outputs = new Tensor[parts.Count];
        for (var i = 0; i < parts.Count; i++)
        {
            var ((start, count, first), k, v) = parts[i];
            if (k.shape[2] != s - first) throw new ArgumentException($"a segment from column {first} holds {k.shape[2]} of the mask's {s} columns", nameof(parts));
            var m = mask.shape[0] == 1 ? mask : mask.narrow(0, start, count);
            var q = parts.Count == 1 ? folded : folded.narrow(0, start, count);
            outputs[i] = nn.functional.scaled_dot_product_attention(q, k, v, m.narrow(-1, first, s - first), 0.0, false);
        }
        return outputs.Length == 1 ? outputs[0] : cat(outputs, 0);
    }
}
