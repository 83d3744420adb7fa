using static TorchSharp.torch;

namespace Dllm.Models.Layers;

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
        if (ctx.Cache is { } cache) (k, v) = cache.Extend(layer, k, v);
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], d = q.shape[3];
        var hkv = k.shape[1];
        var folded = q.reshape(b, hkv, h / hkv * t, d);                 // [B, H_kv, rep*T, D]
        var o = nn.functional.scaled_dot_product_attention(folded, k, v, ctx.FoldedMask, 0.0, false);
        var result = o.reshape(b, h, t, d).transpose(1, 2).reshape(b, t, h * d);   // [B, T, H*D]
        return result.MoveToOuterDisposeScope();
    }
}
