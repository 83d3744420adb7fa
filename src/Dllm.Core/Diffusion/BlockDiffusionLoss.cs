using Dllm.Attention;
using Dllm.Config;
using Dllm.Data;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// The block-diffusion objective of METHOD.md §2 for any block size, as one pure function.
/// B &lt; L: the model sees [x_t ; x] (2L tokens, both halves at positions 0..L-1) under the
/// block-diffusion mask; only the noisy half is projected to logits. B &gt;= L: x_t alone,
/// bidirectional (the MDLM loss). Packed documents never attend to each other.
/// With shifted labels the masked token at i is read from the output at i - 1: the noisy half inside a
/// block, the clean half at a block's first slot (the clean token i - 1 never sees token i); a document's
/// first token has no predecessor and is not scored.
/// </summary>
public static class BlockDiffusionLoss
{
    /// <param name="embeddingNoise">Std of Gaussian noise added to the embeddings of MASK inputs, in
    /// units of the embedding table's RMS (METHOD.md §2, masked-embedding noise); 0 = off (always at eval).</param>
    /// <param name="keepLogits">Also return the noisy half's logits [B, L, V] (for losses built on them, like CAP).</param>
    public static LossResult Compute(CausalLM model, TokenBatch batch, long blockSize, NoiseDraw draw, LabelPosition labels = LabelPosition.Same,
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
        hidden = labels == LabelPosition.Shift ? hidden.index_select(1, ShiftedSources(l, blockSize, mdlm, device))
            : mdlm ? hidden : hidden.narrow(1, 0, l);                                // the outputs that predict x
        var logits = model.Logits(hidden);                                           // [B, L, V]
        var ce = nn.functional.cross_entropy(logits.reshape(b * l, -1), tokens.reshape(b * l), reduction: nn.Reduction.None).reshape(b, l);
        var scorable = Scorable(batch, labels);
        var masked = scorable is null ? draw.Masked.alias() : draw.Masked.logical_and(scorable);
        // Divide first, then select: a position with rate 0 is never masked, and where() keeps its 0.
        var terms = (ce / draw.Rate.clamp_min(1e-6)).where(masked, zeros_like(ce));
        var count = scorable is null ? tensor(b * l, device: device) : scorable.sum();
        var loss = terms.sum() / count.clamp_min(1);
        return new LossResult(loss.MoveToOuterDisposeScope(), terms.MoveToOuterDisposeScope(),
            masked.MoveToOuterDisposeScope(), count.MoveToOuterDisposeScope(), keepLogits ? logits.MoveToOuterDisposeScope() : null);
    }

    /// <summary>
    /// The positions whose loss counts [B, L]: the batch's Scored (null: all, for same-position labels) and, with
    /// shifted labels, only positions with a predecessor in the same document. Draw the noise with this as the
    /// maskable set, so a token nobody predicts is never masked.
    /// </summary>
    public static Tensor? Scorable(TokenBatch batch, LabelPosition labels)
    {
        if (labels == LabelPosition.Same) return batch.Scored?.alias();
        using var scope = NewDisposeScope();
        long b = batch.Tokens.shape[0], l = batch.Tokens.shape[1];
        var device = batch.Tokens.device;
        var hasPredecessor = arange(l, device: device).ge(1).unsqueeze(0).expand(b, l);
        if (batch.DocumentIds is { } docs)
        {
            var sameAsPrevious = docs.narrow(1, 1, l - 1).eq(docs.narrow(1, 0, l - 1));
            hasPredecessor = hasPredecessor.logical_and(cat([zeros(b, 1, dtype: ScalarType.Bool, device: device), sameAsPrevious], 1));
        }
        var result = batch.Scored is { } scored ? hasPredecessor.logical_and(scored) : hasPredecessor.contiguous();
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Shifted labels: for each position i of x, the index of the output that predicts it (position 0's is a placeholder, never scored).</summary>
    private static Tensor ShiftedSources(long l, long blockSize, bool mdlm, Device device)
    {
        using var scope = NewDisposeScope();
        var i = arange(l, device: device);
        var previous = (i - 1).clamp_min(0);
        // [x_t ; x]: a block's first slot reads the clean half (offset L), every other slot the noisy half.
        var sources = mdlm ? previous : previous.where(i.remainder(blockSize).ne(0), previous + l);
        return sources.MoveToOuterDisposeScope();
    }
}
