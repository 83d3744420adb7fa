namespace Dllm.Generation;

/// <summary>
/// LLaDA2.1's token editing (T2T) on top of block decoding. Within the block being decoded, a slot
/// already decided (never a prompt slot) is replaced when the model's token there differs and its
/// confidence is strictly above <see cref="Threshold"/>; masked slots still unmask by the block
/// threshold rule. Once the block has no MASK left, up to <see cref="MaxPostSteps"/> more forwards
/// refine it, stopping early at the first forward that changes nothing; then the block is committed.
/// Threshold 1.0 never edits (a confidence is at most 1); with <see cref="MaxPostSteps"/> 0 no forward
/// runs after the last MASK is filled. Official LLaDA2.1 defaults: threshold 0.9, 16 post steps
/// (its "quality mode" card pairs block threshold 0.7 with editing threshold 0.5).
/// </summary>
public sealed record EditingOptions(double Threshold = 0.9, int MaxPostSteps = 16)
{
    public void Validate()
    {
        if (!(Threshold >= 0 && Threshold <= 1)) throw new DllmException($"editing threshold must be in [0, 1], got {Threshold}");
        if (MaxPostSteps < 0) throw new DllmException($"max post steps must be 0 or more, got {MaxPostSteps}");
    }
}
