namespace Dllm.Generation;

/// <summary>
/// Block-wise parallel decoding settings (METHOD.md §5). Defaults are LLaDA2.0's official ones:
/// block 32, threshold 0.95, at most 32 steps per block. A position is unmasked when its confidence is
/// strictly above the threshold (as the reference implementation compares), so threshold 1.0 unmasks
/// exactly the scheduled minimum per step. <see cref="UseCache"/> false recomputes the whole window
/// every step, as the reference generate does (for comparison and benchmarks).
/// </summary>
public sealed record BlockDecodeOptions(int BlockSize = Config.DiffusionSettings.DefaultBlockSize, double Threshold = 0.95, int MaxStepsPerBlock = 32, bool UseCache = true)
{
    public void Validate()
    {
        if (BlockSize <= 0) throw new DllmException($"block size must be positive, got {BlockSize}");
        if (!(Threshold >= 0 && Threshold <= 1)) throw new DllmException($"threshold must be in [0, 1], got {Threshold}");
        if (MaxStepsPerBlock <= 0) throw new DllmException($"max steps per block must be positive, got {MaxStepsPerBlock}");
    }

    /// <summary>
    /// The reference's transfer schedule: step s of a block must unmask at least
    /// B / steps (+1 for the first B mod steps steps) positions, so a block always finishes within
    /// <see cref="MaxStepsPerBlock"/> steps.
    /// </summary>
    public int MinimumTransfers(int step)
    {
        var steps = Math.Min(MaxStepsPerBlock, BlockSize);
        if (step >= steps) return BlockSize; // past the limit: commit everything left
        return BlockSize / steps + (step < BlockSize % steps ? 1 : 0);
    }
}
