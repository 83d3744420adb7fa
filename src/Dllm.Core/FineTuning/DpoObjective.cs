using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.FineTuning;

/// <summary>
/// DPO settings: beta, Monte-Carlo draws per sequence for the ELBO, the block size and mask-rate band, and
/// <paramref name="ChosenNllWeight"/>: weight of an added NLL term on the chosen response (its -ELBO per
/// response token), as in RPO (Pang et al. 2024); 0 is METHOD.md's DPO exactly. <paramref name="ScorePadding"/>: whether
/// the ELBO also counts the EOS that pad a response to the batch's length (they are masked either way, as the
/// decoder sees them). Off by default: E is then the response's own (its tokens and its end token), the same
/// whatever batch it came in, and on the demo it cost the fine-tuned model 1.2 points instead of 2.8 (docs/benchmarks.md).
/// </summary>
public sealed record DpoSettings(double Beta = 0.1, int ElboSamples = 2, int BlockSize = DiffusionSettings.DefaultBlockSize, double MinRate = 0.3, double MaxRate = 0.8,
    double ChosenNllWeight = 0, bool ScorePadding = false);

/// <summary>
/// DPO with the ELBO surrogate (METHOD.md §4): log pi(y|x) is replaced by E = -NELBO(y|x), the summed
/// 1/t-weighted loss over the response, estimated with S draws. Policy and frozen reference score the
/// same draws (same t, same masks). Batch rows alternate chosen, rejected. Loss per pair:
/// -log sigmoid(beta * [(E_pi(w) - E_ref(w)) - (E_pi(l) - E_ref(l))]).
/// </summary>
public sealed class DpoObjective(CausalLM reference, DpoSettings settings, int maskTokenId, LabelPosition labels = LabelPosition.Same) : ITrainingObjective
{
    public string Name => "dpo";

    public int BlockSizeAt(long step) => settings.BlockSize;

    public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context)
    {
        using var scope = NewDisposeScope();
        var (loss, gains) = Rewards(model, batch, context.Generator);
        var tokens = batch.Scored!.sum();
        // The usual DPO diagnostics: implicit rewards beta * (E_pi - E_ref) of chosen and rejected, and how
        // often chosen wins. Chosen falling with rejected falling faster is DPO's known drift.
        var chosen = settings.Beta * gains.select(1, 0);
        var rejected = settings.Beta * gains.select(1, 1);
        var extra = new Dictionary<string, Tensor>
        {
            ["dpo_chosen_reward"] = chosen.mean().detach().MoveToOuterDisposeScope(),
            ["dpo_rejected_reward"] = rejected.mean().detach().MoveToOuterDisposeScope(),
            ["dpo_reward_accuracy"] = (chosen > rejected).to_type(ScalarType.Float32).mean().MoveToOuterDisposeScope(),
        };
        return new ObjectiveResult(loss.MoveToOuterDisposeScope(), tokens.MoveToOuterDisposeScope(), extra);
    }

    /// <summary>The DPO loss and the per-pair margins [P] (policy-vs-reference ELBO gain of chosen over rejected).</summary>
    public (Tensor Loss, Tensor Margins) Loss(CausalLM model, TokenBatch batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (loss, gains) = Rewards(model, batch, generator);
        var margins = gains.select(1, 0) - gains.select(1, 1);
        return (loss.MoveToOuterDisposeScope(), margins.MoveToOuterDisposeScope());
    }

    /// <summary>The DPO loss and the detached ELBO gains E_pi - E_ref per pair [P, (chosen, rejected)].</summary>
    private (Tensor Loss, Tensor Gains) Rewards(CausalLM model, TokenBatch batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        if (batch.Scored is null) throw new ArgumentException("DPO batches must mark their response tokens (Scored)");
        var scored = BlockDiffusionLoss.Scorable(batch, labels)!;
        long rows = batch.Tokens.shape[0], s = settings.ElboSamples;
        if (rows % 2 != 0) throw new ArgumentException("DPO batches hold chosen/rejected row pairs");
        var tokens = batch.Tokens.repeat(s, 1);                     // [S*2P, L]: the draws for one row are S rows apart
        var mask = scored.repeat(s, 1);
        // Chosen and rejected rows of a pair (adjacent) share rates and coins too: the margin compares them
        // position by position, so common random numbers cut its variance without biasing either ELBO.
        var draw = NoiseSampler.Draw(tokens, settings.BlockSize, maskTokenId, generator, new NoiseOptions { MinRate = settings.MinRate, MaxRate = settings.MaxRate }, mask,
            rowsPerDraw: 2);
        // Padding is noised with the response (the decoder meets masks there) but, unless asked, not part of its ELBO.
        var counted = settings.ScorePadding || batch.Padding is null ? scored : scored.logical_and(batch.Padding.logical_not());
        var unique = new TokenBatch(batch.Tokens, null, counted);   // the S draws are views of one clean stream
        var policy = Elbo(model, unique, draw, s, rows);
        Tensor referenceElbo;
        using (no_grad()) referenceElbo = Elbo(reference, unique, draw, s, rows);
        var gain = (policy - referenceElbo).view(rows / 2, 2);      // [P, (chosen, rejected)]
        var margins = gain.select(1, 0) - gain.select(1, 1);
        var loss = -nn.functional.logsigmoid(settings.Beta * margins).mean();
        if (settings.ChosenNllWeight != 0)
        {
            // The chosen rows' -ELBO per scored token: the SFT loss on the preferred answer, which keeps
            // DPO from lowering the chosen likelihood along with the rejected one.
            var chosenTokens = counted.sum(-1).to_type(ScalarType.Float32).view(rows / 2, 2).select(1, 0).clamp_min(1);
            var nll = (-policy.view(rows / 2, 2).select(1, 0) / chosenTokens).mean();
            loss = loss + settings.ChosenNllWeight * nll;
        }
        return (loss.MoveToOuterDisposeScope(), gain.detach().MoveToOuterDisposeScope());
    }

    /// <summary>E = -NELBO per original row: the summed weighted loss, averaged over its S draws.</summary>
    private Tensor Elbo(CausalLM model, TokenBatch batch, NoiseDraw draw, long samples, long rows)
    {
        using var result = BlockDiffusionLoss.Compute(model, batch, settings.BlockSize, draw, labels, views: (int)samples);
        return (-result.Terms.sum(-1)).view(samples, rows).mean([0]);
    }
}
