namespace Dllm.Serving.Scheduling;

/// <summary>
/// How many requests decode together (<see cref="MaxBatch"/>) and how many may wait for the decode
/// thread (<see cref="MaxQueue"/>, not counting the batch being decoded); a full queue refuses new ones.
/// <see cref="PrefixCacheTokens"/>: how many prompt tokens' keys and values are kept for prompts that start the same
/// way (a system prompt, a chat history), so they are prefilled once (0: off).
/// </summary>
public sealed record SchedulerOptions(int MaxBatch = 8, int MaxQueue = 64, long PrefixCacheTokens = SchedulerOptions.DefaultPrefixCacheTokens)
{
    public const long DefaultPrefixCacheTokens = 16384;

    public void Validate()
    {
        if (PrefixCacheTokens < 0) throw new DllmException($"the prefix cache size must be 0 (off) or more tokens, got {PrefixCacheTokens}");
        if (MaxBatch < 1) throw new DllmException($"max batch must be at least 1, got {MaxBatch}");
        if (MaxQueue < 1) throw new DllmException($"max queue must be at least 1, got {MaxQueue}");
    }
}
