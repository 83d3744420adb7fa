using Dllm.Attention;
using Dllm.Config;
using Dllm.Data;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// The block-diffusion objective of METHOD.md §2 for any block size, as one pure function.
/// B &lt; L: the model sees [x_t ; x] (both halves at positions 0..L-1) under the block-diffusion mask;
/// the clean half stops before the last block, whose clean copy no output reads (2L - B tokens, not 2L);
/// only the noisy half is projected to logits. B &gt;= L: x_t alone, bidirectional (the MDLM loss).
/// Packed documents never attend to each other.
/// With shifted labels the masked token at i is read from the output at i - 1: the noisy half inside a
/// block, the clean half at a block's first slot (the clean token i - 1 never sees token i); a document's
/// first token has no predecessor and is not scored.
/// </summary>
public static class BlockDiffusionLoss
{
    /// <param name="embeddingNoise">Std of Gaussian noise added to the embeddings of MASK inputs, in
    /// units of the embedding table's RMS (METHOD.md §2, masked-embedding noise); 0 = off (always at eval).</param>
    /// <param name="keepLogits">Also return the logits at the masked positions [N, V] and their targets [N], in the order
    /// of Masked's true entries (row-major), for losses built on them, like CAP.</param>
    /// <param name="views">How many noisy views of each clean row <paramref name="draw"/> holds: its rows are view-major,
    /// [v * B, L] for a [B, L] batch (complementary masking's draw has 2). The views share one clean stream, computed
    /// once (see <see cref="AttentionMasks.BlockDiffusion"/>): the same loss as repeating the batch v times, with a
    /// quarter fewer tokens through the model for a pair. Terms and Masked come back [v * B, L], view-major.</param>
    public static LossResult Compute(CausalLM model, TokenBatch batch, long blockSize, NoiseDraw draw, LabelPosition labels = LabelPosition.Same,
        double embeddingNoise = 0.0, Generator? noiseGenerator = null, bool keepLogits = false, int views = 1)
    {
        using var scope = NewDisposeScope();
        var tokens = batch.Tokens;
        long b = tokens.shape[0], l = tokens.shape[1];
        if (views < 1 || draw.Noisy.shape[0] != views * b)
            throw new ArgumentException($"the draw has {draw.Noisy.shape[0]} rows, not {views} view(s) of {b}");
        var device = tokens.device;
        var mdlm = blockSize >= l;

        Tensor input, positions, mask;
        var docs = batch.DocumentIds;
        if (mdlm)
        {
            // No clean stream to share: the views are just more rows.
            input = draw.Noisy;
            positions = arange(l, device: device);
            mask = AttentionMasks.Bidirectional(l, l, device);
            if (docs is not null)
            {
                docs = Repeated(docs, views);
                mask = mask.logical_and(AttentionMasks.SameDocument(docs, docs));
            }
        }
        else
        {
            // The clean stream stops before the last block: nothing reads that block's clean copy.
            var clean = AttentionMasks.CleanStreamLength(l, blockSize);
            input = cat([.. draw.Noisy.chunk(views, 0), tokens.narrow(1, 0, clean)], 1);   // [B, vL + C]
            var half = arange(l, device: device);
            positions = cat([.. Enumerable.Repeat(half, views), arange(clean, device: device)]);
            mask = AttentionMasks.BlockDiffusion(l, blockSize, device, views, clean);        // [vL + C, vL + C]
            if (docs is not null)
            {
                var all = cat([.. Enumerable.Repeat(docs, views), docs.narrow(1, 0, clean)], 1);
                mask = mask.logical_and(AttentionMasks.SameDocument(all, all));             // [B, vL + C, vL + C]
            }
        }

        var embeddings = model.Embed(input);
        if (embeddingNoise > 0)
            embeddings = EmbeddingNoise.Apply(embeddings, input.eq(draw.MaskTokenId), model.Embeddings.Weight, embeddingNoise, noiseGenerator);
        var hidden = model.Hidden(embeddings, positions, mask);
        if (mdlm)
            hidden = labels == LabelPosition.Shift ? hidden.index_select(1, ShiftedSources(l, blockSize, mdlm, 0, 0, device)) : hidden;
        else
        {
            // The outputs that predict x, view by view: [B, vL, H] -> [vB, L, H], view-major like the draw.
            var sources = cat(Enumerable.Range(0, views).Select(view => labels == LabelPosition.Shift
                ? ShiftedSources(l, blockSize, mdlm, view * l, views * l, device) : arange(view * l, (view + 1) * l, device: device)).ToArray());
            hidden = hidden.index_select(1, sources).unflatten(1, [views, l]).transpose(0, 1).reshape(views * b, l, -1);
        }
        var targets = Repeated(tokens, views);
        var scorable = Scorable(batch, labels);
        var masked = scorable is null ? draw.Masked.alias() : draw.Masked.logical_and(Repeated(scorable, views));
        // Logits only where a term exists: the LM head, the cross-entropy (and CAP after it) skip the prompt and
        // the unmasked tokens, about half of an SFT batch. nonzero() syncs with the host, as the count does anyway.
        var at = masked.reshape(-1).nonzero().squeeze(1);
        var logits = model.Logits(hidden.reshape(views * b * l, -1).index_select(0, at));          // [N, V]
        var maskedTargets = targets.reshape(-1).index_select(0, at);                              // [N]
        var ce = nn.functional.cross_entropy(logits, maskedTargets, reduction: nn.Reduction.None);
        var weighted = ce / draw.Rate.reshape(-1).index_select(0, at).clamp_min(1e-6);
        var terms = zeros(views * b * l, dtype: weighted.dtype, device: device).index_copy(0, at, weighted).reshape(views * b, l);
        var count = scorable is null ? tensor(views * b * l, device: device) : scorable.sum() * views;
        var loss = weighted.sum() / count.clamp_min(1);
        return new LossResult(loss.MoveToOuterDisposeScope(), terms.MoveToOuterDisposeScope(),
            masked.MoveToOuterDisposeScope(), count.MoveToOuterDisposeScope(), keepLogits ? logits.MoveToOuterDisposeScope() : null,
            keepLogits ? maskedTargets.MoveToOuterDisposeScope() : null);
    }

    /// <summary>Rows [B, ...] repeated v times along the batch, view-major (row j of view k at k * B + j).</summary>
    private static Tensor Repeated(Tensor rows, int views) => views == 1 ? rows : cat(Enumerable.Repeat(rows, views).ToArray(), 0);

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

    /// <summary>
    /// Shifted labels: for each position i of x, the index of the output that predicts it (position 0's is a
    /// placeholder, never scored): the noisy view at <paramref name="noisyOffset"/>, or at a block's first slot the
    /// clean stream at <paramref name="cleanOffset"/>.
    /// </summary>
    private static Tensor ShiftedSources(long l, long blockSize, bool mdlm, long noisyOffset, long cleanOffset, Device device)
    {
        using var scope = NewDisposeScope();
        var i = arange(l, device: device);
        var previous = (i - 1).clamp_min(0);
        var sources = mdlm ? previous : (previous + noisyOffset).where(i.remainder(blockSize).ne(0), previous + cleanOffset);
        return sources.MoveToOuterDisposeScope();
    }
}
