namespace Dllm.Generation;

/// <summary>
/// Block-wise parallel decoding settings (METHOD.md §5). Defaults are LLaDA2.0's official ones:
/// block 32, threshold 0.95, at most 32 steps per block. A position is unmasked when its confidence is
/// strictly above the threshold (as the reference implementation compares), so threshold 1.0 unmasks
/// exactly the scheduled minimum per step. <see cref="UseCache"/> false recomputes the whole window
/// every step, as the reference generate does (for comparison and benchmarks).
/// Two rules beyond the official threshold rule, both off by default (docs/benchmarks.md measures them):
/// <see cref="StopFill"/>: once a stop token is decided in a block, every later slot of the block is filled with it
/// (those slots never reach the output), so the step's minimum goes to the slots before it, and they see the padding
/// the model was trained to expect. <see cref="Credit"/>: dInfer's credit decoding (see <see cref="CreditOptions"/>).
/// <see cref="Editing"/> turns on LLaDA2.1's token editing (null: a decided slot never changes); it runs the official
/// LLaDA2.1 loop and so combines with neither of the two.
/// </summary>
public sealed record BlockDecodeOptions(int BlockSize = Config.DiffusionSettings.DefaultBlockSize, double Threshold = 0.95, int MaxStepsPerBlock = 32, bool UseCache = true,
    bool StopFill = false, CreditOptions? Credit = null, EditingOptions? Editing = null)
{
    public void Validate()
    {
        Credit?.Validate();
        Editing?.Validate();
        if (Editing is not null && (StopFill || Credit is not null))
            throw new DllmException("token editing follows the official LLaDA2.1 loop and combines with neither stop fill nor credit decoding");
        if (BlockSize <= 0) throw new DllmException($"block size must be positive, got {BlockSize}");
        if (!(Threshold >= 0 && Threshold <= 1)) throw new DllmException($"threshold must be in [0, 1], got {Threshold}");
        if (MaxStepsPerBlock <= 0) throw new DllmException($"max steps per block must be positive, got {MaxStepsPerBlock}");
    }

    /// <summary>
    /// <see cref="Validate"/>, and the settings fit a model trained with these labels. Token editing re-predicts slots
    /// that are already decided, which a same-position model (LLaDA2.1) reads at the slot itself. A shifted-label
    /// model reads slot s at s - 1, a position that sees the decided token at s and was never trained to predict a
    /// visible one: on the demo's tasks every edit copied the previous word and accuracy fell from 97% to 0.
    /// </summary>
    public void ValidateFor(Config.LabelPosition labels)
    {
        Validate();
        if (Editing is not null && labels == Config.LabelPosition.Shift)
            throw new DllmException("token editing needs a model trained with same-position labels (as LLaDA2.1 is); this model was converted with " +
                                    "shifted labels, whose prediction for a decided token comes from the position before it, which sees that token");
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

/// <summary>
/// Credit decoding (dInfer's CreditThresholdParallelDecoder; Wang et al. 2025, "trace credits"): each slot of a
/// block keeps an exponentially decayed credit per token, credit = Decay * credit + p^Boost added to the slot's top
/// token each step it is still masked; the threshold rule then reads logits + Alpha * log(1 + credit), so a token the
/// model keeps predicting passes the threshold sooner. dInfer's defaults: alpha 0.7, boost gamma 0.2, decay 0.8.
/// </summary>
public sealed record CreditOptions(double Alpha = 0.7, double Boost = 0.2, double Decay = 0.8)
{
    public void Validate()
    {
        if (!(Alpha >= 0 && double.IsFinite(Alpha))) throw new DllmException($"credit alpha must be a finite number >= 0, got {Alpha}");
        if (!(Boost > 0 && double.IsFinite(Boost))) throw new DllmException($"credit boost must be a finite number > 0, got {Boost}");
        if (!(Decay >= 0 && Decay <= 1)) throw new DllmException($"credit decay must be in [0, 1], got {Decay}");
    }
}
