namespace Dllm.Serving.Scheduling;

/// <summary>
/// How many requests decode together (<see cref="MaxBatch"/>) and how many may wait for the decode
/// thread (<see cref="MaxQueue"/>, not counting the batch being decoded); a full queue refuses new ones.
/// <see cref="PrefixCacheTokens"/>: how many prompt tokens' keys and values are kept for prompts that start the same
/// way (a system prompt, a chat history), so they are prefilled once (0: off). <see cref="PrefillChunk"/>: while
/// requests decode, a joining prompt is prefilled at most this many tokens per step, so a long prompt does not stall
/// them (0: at once; see <see cref="Dllm.Generation.DecodeSession.PrefillChunk"/>). <see cref="MaxBatchTokens"/>: the
/// most tokens the running batch may hold at once, counting each request as its prompt plus its token limit (what
/// its KV cache can grow to), so the cache's memory has a bound whatever the mix of requests; a request's limit is
/// clamped to fit it alone, and others wait in the queue until enough leave (0: no bound beyond the batch size).
/// </summary>
public sealed record SchedulerOptions(int MaxBatch = 8, int MaxQueue = 64, long PrefixCacheTokens = SchedulerOptions.DefaultPrefixCacheTokens,
    int PrefillChunk = SchedulerOptions.DefaultPrefillChunk, long MaxBatchTokens = 0)
{
    public const long DefaultPrefixCacheTokens = 16384;
    public const int DefaultPrefillChunk = 512;

    public void Validate()
    {
        Generation.DecodeSession.CheckPrefillChunk(PrefillChunk);
        if (PrefixCacheTokens < 0) throw new DllmException($"the prefix cache size must be 0 (off) or more tokens, got {PrefixCacheTokens}");
        if (MaxBatch < 1) throw new DllmException($"max batch must be at least 1, got {MaxBatch}");
        if (MaxQueue < 1) throw new DllmException($"max queue must be at least 1, got {MaxQueue}");
        if (MaxBatchTokens < 0) throw new DllmException($"the batch's token bound (--max-batch-tokens) must be 0 (none) or more tokens, got {MaxBatchTokens}");
    }
}
