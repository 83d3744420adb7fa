using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// A Monte-Carlo estimate of the negative ELBO: <see cref="Loss"/> is the sum of the per-token terms
/// (cross-entropy at masked positions weighted by 1/t) divided by <see cref="TokenCount"/>, the number
/// of scored tokens. <see cref="Terms"/> keeps the per-token values for logging and tests; <see cref="MaskedLogits"/>,
/// when asked for, the logits [N, V] at the N masked positions and <see cref="MaskedTargets"/> [N] the tokens there, in the order of
/// <see cref="Masked"/>'s true entries.
/// </summary>
public sealed record LossResult(Tensor Loss, Tensor Terms, Tensor Masked, Tensor TokenCount, Tensor? MaskedLogits = null, Tensor? MaskedTargets = null) : IDisposable
{
    public void Dispose()
    {
        MaskedLogits?.Dispose();
        MaskedTargets?.Dispose();
        Loss.Dispose();
        Terms.Dispose();
        Masked.Dispose();
        TokenCount.Dispose();
    }
}
