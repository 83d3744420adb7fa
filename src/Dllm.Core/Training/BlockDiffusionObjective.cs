using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>
/// Conversion's objective: the block-diffusion loss at the block size the schedule sets for the
/// step, with per-block mask rates and masked-embedding noise (METHOD.md §2-3), at the chosen label position.
/// </summary>
public sealed class BlockDiffusionObjective(BlockSchedule schedule, int maskTokenId, NoiseOptions noise, LabelPosition labels = LabelPosition.Same) : ITrainingObjective
{
    public string Name => "block-diffusion";

    public int BlockSizeAt(long step) => schedule.BlockSizeAt(step);

    public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context)
    {
        using var scope = NewDisposeScope();
        var blockSize = schedule.BlockSizeAt(context.Step);
        using var draw = NoiseSampler.Draw(batch.Tokens, blockSize, maskTokenId, context.Generator, noise, BlockDiffusionLoss.Scorable(batch, labels));
        using var result = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels, context.EmbeddingNoise, context.Generator);
        var tokens = result.TokenCount.item<long>();
        return new ObjectiveResult(result.Loss.alias().MoveToOuterDisposeScope(), tokens);
    }
}
