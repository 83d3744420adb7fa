using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// One draw of the forward (masking) process for a batch: which tokens became MASK, and the mask
/// rate t of the block each token belongs to. Kept apart from the loss so that two models can be
/// scored on the very same draw (DPO's policy and reference, a naive reference in tests).
/// </summary>
public sealed record NoiseDraw(Tensor Noisy, Tensor Masked, Tensor Rate, long MaskTokenId) : IDisposable
{
    public void Dispose()
    {
        Noisy.Dispose();
        Masked.Dispose();
        Rate.Dispose();
    }
}

/// <summary>How mask rates are drawn (METHOD.md §2.1 and §4).</summary>
public sealed record NoiseOptions
{
    /// <summary>Rates are drawn from U(MinRate, MaxRate]; the pre-training default is (1e-3, 1].</summary>
    public double MinRate { get; init; } = 1e-3;
    public double MaxRate { get; init; } = 1.0;
    /// <summary>One rate for the whole sequence instead of one per block.</summary>
    public bool PerSequence { get; init; }

    public void Validate()
    {
        if (!(MinRate >= 0 && MinRate < MaxRate && MaxRate <= 1))
            throw new DllmException($"mask-rate band must satisfy 0 <= min < max <= 1, got [{MinRate}, {MaxRate}]");
    }
}
