using Dllm.Attention;
using Dllm.Data;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// The block-diffusion objective of METHOD.md §2 for any block size, as one pure function.
/// B &lt; L: the model sees [x_t ; x] (2L tokens, both halves at positions 0..L-1) under the
/// block-diffusion mask; only the noisy half is projected to logits. B &gt;= L: x_t alone,
/// bidirectional (the MDLM loss). Packed documents never attend to each other.
/// </summary>
public static class BlockDiffusionLoss
{
    /// <param name="embeddingNoise">Std of Gaussian noise added to the embeddings of MASK inputs, in
    /// units of the embedding table's RMS (METHOD.md §2, masked-embedding noise); 0 = off (always at eval).</param>
    /// <param name="keepLogits">Also return the noisy half's logits [B, L, V] (for losses built on them, like CAP).</param>
    public static LossResult Compute(CausalLM model, TokenBatch batch, long blockSize, NoiseDraw draw,
        double embeddingNoise = 0.0, Generator? noiseGenerator = null, bool keepLogits = false)
    {
        using var scope = NewDisposeScope();
        var tokens = batch.Tokens;
        long b = tokens.shape[0], l = tokens.shape[1];
        var device = tokens.device;
        var mdlm = blockSize >= l;

        Tensor input, positions, mask;
        if (mdlm)
        {
            input = draw.Noisy;
            positions = arange(l, device: device);
            mask = AttentionMasks.Bidirectional(l, l, device);
            if (batch.DocumentIds is { } docs) mask = mask.logical_and(AttentionMasks.SameDocument(docs, docs));
        }
        else
        {
            input = cat([draw.Noisy, tokens], 1);                                     // [B, 2L]
            var half = arange(l, device: device);
            positions = cat([half, half]);
            mask = AttentionMasks.BlockDiffusion(l, blockSize, device);             // [2L, 2L]
            if (batch.DocumentIds is { } docs)
            {
                var both = cat([docs, docs], 1);
                mask = mask.logical_and(AttentionMasks.SameDocument(both, both));   // [B, 2L, 2L]
            }
        }

        var embeddings = model.Embed(input);
        if (embeddingNoise > 0)
            embeddings = EmbeddingNoise.Apply(embeddings, input.eq(draw.MaskTokenId), model.Embeddings.Weight, embeddingNoise, noiseGenerator);
        var hidden = model.Hidden(embeddings, positions, mask);
        if (!mdlm) hidden = hidden.narrow(1, 0, l);                                  // noisy half only
        var logits = model.Logits(hidden);                                           // [B, L, V]
        var ce = nn.functional.cross_entropy(logits.reshape(b * l, -1), tokens.reshape(b * l), reduction: nn.Reduction.None).reshape(b, l);
        // Divide first, then select: a position with rate 0 is never masked, and where() keeps its 0.
        var terms = (ce / draw.Rate.clamp_min(1e-6)).where(draw.Masked, zeros_like(ce));
        var count = batch.Scored is { } scored ? scored.sum() : tensor(b * l, device: device);
        var loss = terms.sum() / count.clamp_min(1);
        return new LossResult(loss.MoveToOuterDisposeScope(), terms.MoveToOuterDisposeScope(),
            draw.Masked.alias().MoveToOuterDisposeScope(), count.MoveToOuterDisposeScope(), keepLogits ? logits.MoveToOuterDisposeScope() : null);
    }
}
