using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.FineTuning;

/// <summary>
/// SFT settings. The mask-rate band, complementary masking and CAP follow METHOD.md §4; defaults are
/// the official SFT config's (block 32, band [0.3, 0.8]); CAP's entropy weight in the official training
/// docs is 2.0 (off here unless asked for).
/// </summary>
public sealed record SftSettings(int BlockSize = DiffusionSettings.DefaultBlockSize, double MinRate = 0.3, double MaxRate = 0.8, bool Complementary = true, double CapWeight = 0.0);

/// <summary>
/// The diffusion SFT loss: only response tokens are noised and scored (the prompt stays clean and
/// carries no loss); rates come from the band; with complementary masking each row is trained with
/// its mask and with the complement; CAP adds <c>CapWeight</c> times the confidence term.
/// </summary>
public sealed class SftObjective(SftSettings settings, int maskTokenId, LabelPosition labels = LabelPosition.Same) : ITrainingObjective
{
    public string Name => settings.CapWeight > 0 ? "sft+cap" : "sft";

    public int BlockSizeAt(long step) => settings.BlockSize;

    public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context)
    {
        using var scope = NewDisposeScope();
        var (loss, tokens) = Loss(model, batch, context.Generator, context.EmbeddingNoise);
        return new ObjectiveResult(loss.MoveToOuterDisposeScope(), tokens.MoveToOuterDisposeScope());
    }

    /// <summary>The loss and the number of scored tokens (a 0-d tensor), for a batch whose Scored marks the responses.</summary>
    public (Tensor Loss, Tensor Tokens) Loss(CausalLM model, TokenBatch batch, Generator generator, double embeddingNoise = 0)
    {
        using var scope = NewDisposeScope();
        if (batch.Scored is null) throw new ArgumentException("SFT batches must mark their response tokens (Scored)");
        var scored = BlockDiffusionLoss.Scorable(batch, labels)!;
        var noise = new NoiseOptions { MinRate = settings.MinRate, MaxRate = settings.MaxRate };
        var draw = NoiseSampler.Draw(batch.Tokens, settings.BlockSize, maskTokenId, generator, noise, scored);
        var views = 1;
        if (settings.Complementary)
        {
            draw = ComplementaryMasking.WithComplement(draw, batch.Tokens, scored);
            views = 2;
        }
        using var result = BlockDiffusionLoss.Compute(model, new TokenBatch(batch.Tokens, null, scored), settings.BlockSize, draw, labels,
            embeddingNoise, generator, keepLogits: settings.CapWeight > 0, views: views);
        var loss = result.Loss.alias();   // result is disposed on return; the alias keeps the graph
        if (settings.CapWeight > 0)
            loss = loss + settings.CapWeight * ConfidenceLoss.Compute(result.MaskedLogits!, result.MaskedTargets!);
        return (loss.MoveToOuterDisposeScope(), result.TokenCount.alias().MoveToOuterDisposeScope());
    }
}
