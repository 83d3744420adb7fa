using static TorchSharp.torch;

namespace Dllm.FineTuning;

/// <summary>
/// CAP's confidence term (METHOD.md §4): the mean entropy of the predictive distribution over masked
/// positions whose argmax already equals the target. Minimising it sharpens predictions the model
/// already gets right, so more positions clear the decoding threshold in one step. Zero when no
/// masked position is right yet.
/// </summary>
public static class ConfidenceLoss
{
    /// <param name="logits">[N, V] logits at the masked positions.</param>
    /// <param name="targets">[N] the clean tokens there.</param>
    public static Tensor Compute(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var logp = logits.log_softmax(-1);
        var entropy = -(logp.exp() * logp).sum(-1);      // [N]
        var right = logits.argmax(-1).eq(targets);        // argmax has no gradient: a selector only
        var count = right.sum();
        var total = entropy.where(right, zeros_like(entropy)).sum();
        return (total / count.clamp_min(1)).MoveToOuterDisposeScope();
    }
}
