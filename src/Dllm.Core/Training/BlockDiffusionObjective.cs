using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>How a masked token's cross-entropy is weighted in the conversion loss.</summary>
public enum LossWeighting
{
    /// <summary>Weight 1 for every masked token. Not an ELBO, but it beat 1/t at equal steps on every measure of
    /// docs/conversion.md: the 1/t factor lets the few tokens of lightly masked blocks dominate the gradient.</summary>
    Flat,
    /// <summary>Weight 1/t, the block's mask rate: the negative ELBO of METHOD.md §2, which evaluation reports.</summary>
    Elbo,
}

public static class LossWeightings
{
    public static string Name(this LossWeighting w) => w switch { LossWeighting.Flat => "flat", _ => "elbo" };

    public static LossWeighting Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "flat" => LossWeighting.Flat,
        "elbo" => LossWeighting.Elbo,
        _ => throw new DllmException($"unknown loss weighting '{name}': use flat (weight 1 per masked token) or elbo (weight 1/t)"),
    };
}

/// <summary>
/// Variants of the conversion loss studied in docs/conversion.md. <paramref name="Complementary"/>: every row is
/// trained twice, with its mask and with the complement (METHOD.md §4, here during conversion), so every
/// token is scored once per step. <paramref name="Weighting"/>: flat (the default, by the study's evidence) or
/// the ELBO's 1/t; evaluation always reports the 1/t bound. <paramref name="ParentWeight"/>: the weight of a
/// distillation term that keeps the AR parent's next-token distributions (0 = off; see <see cref="BlockDiffusionObjective"/>).
/// </summary>
public sealed record ConversionLoss(bool Complementary = false, LossWeighting Weighting = LossWeighting.Flat, double ParentWeight = 0)
{
    public void Validate()
    {
        if (ParentWeight < 0 || !double.IsFinite(ParentWeight))
            throw new DllmException($"--parent-weight must be 0 (off) or positive, got {ParentWeight}");
    }
}

/// <summary>
/// Conversion's objective: the block-diffusion loss at the block size the schedule sets for the
/// step, with per-block mask rates and masked-embedding noise (METHOD.md §2-3), at the chosen label position.
/// With a <paramref name="parent"/> (the frozen AR model being converted) and a parent weight w, each masked token
/// that has a predecessor in its document also pays w x KL(parent || dLLM): the parent's next-token distribution
/// at the token before it (computed on the clean text, so the parent sees every earlier token) against the dLLM's
/// prediction for the slot. The one-hot label says which token came; the parent's distribution says how likely
/// every other one was, which is what conversion forgets (docs/conversion.md, "Where the gap comes from"). The
/// parent knows the slot's masked in-block predecessors and the dLLM does not, so the term alone would pull
/// towards ignoring the tokens after the slot; the cross-entropy keeps those in play.
/// </summary>
public sealed class BlockDiffusionObjective(BlockSchedule schedule, int maskTokenId, NoiseOptions noise, LabelPosition labels = LabelPosition.Same,
    ConversionLoss? variant = null, CausalLM? parent = null) : ITrainingObjective
{
    private readonly ConversionLoss _variant = variant ?? new ConversionLoss();

    public string Name => "block-diffusion";

    public int BlockSizeAt(long step) => schedule.BlockSizeAt(step);

    public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context)
    {
        using var scope = NewDisposeScope();
        var blockSize = schedule.BlockSizeAt(context.Step);
        var scorable = BlockDiffusionLoss.Scorable(batch, labels);
        var draw = NoiseSampler.Draw(batch.Tokens, blockSize, maskTokenId, context.Generator, noise, scorable);
        var views = 1;
        if (_variant.Complementary)
        {
            draw = ComplementaryMasking.WithComplement(draw, batch.Tokens, scorable ?? ones_like(batch.Tokens, dtype: ScalarType.Bool));
            views = 2;
        }
        if (_variant.Weighting == LossWeighting.Flat) draw = draw with { Rate = ones_like(draw.Rate) };
        var distil = parent is not null && _variant.ParentWeight > 0;
        using var result = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels, context.EmbeddingNoise, context.Generator,
            keepLogits: distil, views: views);
        if (!distil)
            return new ObjectiveResult(result.Loss.alias().MoveToOuterDisposeScope(), result.TokenCount.alias().MoveToOuterDisposeScope());
        var (klSum, pairs) = ParentDivergence(parent!, batch, result);
        var loss = result.Loss + _variant.ParentWeight * klSum / result.TokenCount.clamp_min(1);
        var meanKl = klSum / pairs.clamp_min(1);
        return new ObjectiveResult(loss.MoveToOuterDisposeScope(), result.TokenCount.alias().MoveToOuterDisposeScope(),
            new Dictionary<string, Tensor> { ["parent_kl"] = meanKl.detach().MoveToOuterDisposeScope() });
    }

    /// <summary>
    /// Sum over the masked slots with a predecessor in their document of KL(parent(x_i | x_&lt;i) || dLLM(slot i)),
    /// and how many such slots there were. The parent is run causally on the clean rows; its output at i - 1 is its
    /// distribution for token i. Its vocabulary may lack the MASK token the dLLM added: the dLLM's mass there counts
    /// as mass off the parent's support (the KL over the parent's tokens of the dLLM's full softmax).
    /// </summary>
    internal static (Tensor KlSum, Tensor Pairs) ParentDivergence(CausalLM parent, TokenBatch batch, LossResult result)
    {
        using var scope = NewDisposeScope();
        var tokens = batch.Tokens;
        long b = tokens.shape[0], l = tokens.shape[1];
        // Masked slots as flat indices into the view-major [v * B, L] rows, in MaskedLogits' order.
        var at = result.Masked.reshape(-1).nonzero().squeeze(1);
        var within = at.remainder(b * l);                     // the same slot in the clean [B, L] batch
        var hasPredecessor = within.remainder(l).gt(0);
        var before = (within - 1).clamp_min(0);
        if (batch.DocumentIds is { } docs)
        {
            var flatDocs = docs.reshape(-1);
            hasPredecessor = hasPredecessor.logical_and(flatDocs.index_select(0, within).eq(flatDocs.index_select(0, before)));
        }
        Tensor parentLogProbs;
        using (no_grad())
        {
            var hidden = parent.Hidden(parent.Embed(tokens), mask: ArObjective.Mask(batch)).reshape(b * l, -1).index_select(0, before);
            parentLogProbs = nn.functional.log_softmax(parent.Logits(hidden), -1);                  // [N, Vp]
        }
        var vocab = parentLogProbs.shape[1];
        var dllmLogProbs = nn.functional.log_softmax(result.MaskedLogits!, -1).narrow(1, 0, vocab);  // [N, Vp]
        var kl = (parentLogProbs.exp() * (parentLogProbs - dllmLogProbs)).sum(-1);
        var counted = hasPredecessor.to_type(kl.dtype);
        return ((kl * counted).sum().MoveToOuterDisposeScope(), counted.sum().MoveToOuterDisposeScope());
    }
}
