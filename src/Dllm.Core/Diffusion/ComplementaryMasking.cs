using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// Complementary masking (METHOD.md §4): alongside a draw M, the same sequences with the complement of M
/// over the maskable tokens, each block at rate 1 - t, so every maskable token is trained on exactly once
/// per pair. The result stacks the two draws along the batch: rows [0, N) are M, rows [N, 2N) its complement.
/// </summary>
public static class ComplementaryMasking
{
    public static NoiseDraw WithComplement(NoiseDraw draw, Tensor tokens, Tensor maskable)
    {
        using var scope = NewDisposeScope();
        var complement = maskable.logical_and(draw.Masked.logical_not());
        var noisy = tokens.masked_fill(complement, draw.MaskTokenId);
        var rate = (1 - draw.Rate).clamp_min(1e-6);
        return new NoiseDraw(
            cat([draw.Noisy, noisy], 0).MoveToOuterDisposeScope(),
            cat([draw.Masked, complement], 0).MoveToOuterDisposeScope(),
            cat([draw.Rate, rate], 0).MoveToOuterDisposeScope(),
            draw.MaskTokenId);
    }
}
