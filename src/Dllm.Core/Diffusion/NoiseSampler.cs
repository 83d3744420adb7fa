using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// The masking process of METHOD.md §2: each block b draws a rate t_b, then each maskable token of
/// the block independently becomes MASK with probability t_b. A block that drew no mask is left
/// alone (no forced mask: forcing one would bias the 1/t-weighted estimate).
/// </summary>
public static class NoiseSampler
{
    /// <param name="tokens">Clean tokens [B, L].</param>
    /// <param name="maskable">Which positions may be masked and scored [B, L] (null: all).</param>
    /// <param name="rowsPerDraw">Consecutive rows in groups of this size share their rates and coins (common
    /// random numbers: each row's draw is still exact, differences between the rows of a group vary less).</param>
    public static NoiseDraw Draw(Tensor tokens, long blockSize, long maskTokenId, Generator generator, NoiseOptions options, Tensor? maskable = null,
        long rowsPerDraw = 1)
    {
        options.Validate();
        using var scope = NewDisposeScope();
        long b = tokens.shape[0], l = tokens.shape[1];
        if (rowsPerDraw < 1 || b % rowsPerDraw != 0) throw new ArgumentException($"{b} rows do not split into groups of {rowsPerDraw}");
        var draws = b / rowsPerDraw;
        Tensor Shared(Tensor perDraw) => rowsPerDraw == 1 ? perDraw : perDraw.repeat_interleave(rowsPerDraw, 0);
        var blocks = (l + blockSize - 1) / blockSize;
        var u = Shared(rand(new[] { draws, options.PerSequence ? 1 : blocks }, generator: generator, dtype: ScalarType.Float32).to(tokens.device));
        // u in [0, 1) maps to t in (min, max]: the rate is never exactly min (at min = 0 that would be a 1/0 weight).
        var t = (options.MaxRate - (options.MaxRate - options.MinRate) * u);
        var blockOf = arange(l, device: tokens.device).div(blockSize, rounding_mode: RoundingMode.floor);
        var rate = options.PerSequence ? t.expand(b, l) : t.index_select(1, blockOf);            // [B, L]
        var coin = Shared(rand(new[] { draws, l }, generator: generator, dtype: ScalarType.Float32).to(tokens.device));
        var masked = coin.lt(rate);
        if (maskable is not null) masked = masked.logical_and(maskable);
        var noisy = tokens.masked_fill(masked, maskTokenId);
        return new NoiseDraw(noisy.MoveToOuterDisposeScope(), masked.MoveToOuterDisposeScope(), rate.contiguous().MoveToOuterDisposeScope(), maskTokenId);
    }
}
