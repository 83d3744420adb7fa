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
        "elbo" or "1/t" => LossWeighting.Elbo,
        _ => throw new DllmException($"unknown loss weighting '{name}': use flat (weight 1 per masked token) or elbo (weight 1/t)"),
    };
}

/// <summary>
/// Variants of the conversion loss studied in docs/conversion.md. <paramref name="Complementary"/>: every row is
/// trained twice, with its mask and with the complement (METHOD.md §4, here during conversion), so every
/// token is scored once per step. <paramref name="Weighting"/>: flat (the default, by the study's evidence) or
/// the ELBO's 1/t; evaluation always reports the 1/t bound.
/// </summary>
public sealed record ConversionLoss(bool Complementary = false, LossWeighting Weighting = LossWeighting.Flat);

/// <summary>
/// Conversion's objective: the block-diffusion loss at the block size the schedule sets for the
/// step, with per-block mask rates and masked-embedding noise (METHOD.md §2-3), at the chosen label position.
/// </summary>
public sealed class BlockDiffusionObjective(BlockSchedule schedule, int maskTokenId, NoiseOptions noise, LabelPosition labels = LabelPosition.Same,
    ConversionLoss? variant = null) : ITrainingObjective
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
        using var result = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels, context.EmbeddingNoise, context.Generator, views: views);
        return new ObjectiveResult(result.Loss.alias().MoveToOuterDisposeScope(), result.TokenCount.alias().MoveToOuterDisposeScope());
    }
}
