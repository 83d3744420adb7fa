namespace Dllm.Serving.Scheduling;

/// <summary>
/// How many requests decode together (<see cref="MaxBatch"/>) and how many may wait for the decode
/// thread (<see cref="MaxQueue"/>, not counting the batch being decoded); a full queue refuses new ones.
/// <see cref="PrefixCacheTokens"/>: how many prompt tokens' keys and values are kept for prompts that start the same
/// way (a system prompt, a chat history), so they are prefilled once (0: off). <see cref="PrefillChunk"/>: while
/// requests decode, a joining prompt is prefilled at most this many tokens per step, so a long prompt does not stall
/// them (0: at once; see <see cref="Dllm.Generation.DecodeSession.PrefillChunk"/>).
/// </summary>
public sealed record SchedulerOptions(int MaxBatch = 8, int MaxQueue = 64, long PrefixCacheTokens = SchedulerOptions.DefaultPrefixCacheTokens,
    int PrefillChunk = SchedulerOptions.DefaultPrefillChunk)
{
    public const long DefaultPrefixCacheTokens = 16384;
    public const int DefaultPrefillChunk = 512;

    public void Validate()
    {
        Generation.DecodeSession.CheckPrefillChunk(PrefillChunk);
        if (PrefixCacheTokens < 0) throw new DllmException($"the prefix cache size must be 0 (off) or more tokens, got {PrefixCacheTokens}");
        if (MaxBatch < 1) throw new DllmException($"max batch must be at least 1, got {MaxBatch}");
        if (MaxQueue < 1) throw new DllmException($"max queue must be at least 1, got {MaxQueue}");
    }
}
