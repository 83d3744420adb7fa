using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// A Monte-Carlo estimate of the negative ELBO: <see cref="Loss"/> is the sum of the per-token terms
/// (cross-entropy at masked positions weighted by 1/t) divided by <see cref="TokenCount"/>, the number
/// of scored tokens. <see cref="Terms"/> keeps the per-token values for logging and tests.
/// </summary>
public sealed record LossResult(Tensor Loss, Tensor Terms, Tensor Masked, Tensor TokenCount, Tensor? Logits = null) : IDisposable
{
    public void Dispose()
    {
        Logits?.Dispose();
        Loss.Dispose();
        Terms.Dispose();
        Masked.Dispose();
        TokenCount.Dispose();
    }
}
