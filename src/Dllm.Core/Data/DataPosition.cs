namespace Dllm.Data;

/// <summary>
/// Where a <see cref="BatchSampler"/> stands: in epoch <paramref name="Epoch"/>, <paramref name="Offset"/> windows of
/// that epoch's order are already consumed. Saved with a checkpoint, it resumes the data stream exactly.
/// </summary>
public sealed record DataPosition(long Epoch, long Offset);
