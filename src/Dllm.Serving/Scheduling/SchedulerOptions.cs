namespace Dllm.Serving.Scheduling;

/// <summary>
/// How many requests decode together (<see cref="MaxBatch"/>) and how many may wait for the decode
/// thread (<see cref="MaxQueue"/>, not counting the batch being decoded); a full queue refuses new ones.
/// </summary>
public sealed record SchedulerOptions(int MaxBatch = 8, int MaxQueue = 64)
{
    public void Validate()
    {
        if (MaxBatch < 1) throw new DllmException($"max batch must be at least 1, got {MaxBatch}");
        if (MaxQueue < 1) throw new DllmException($"max queue must be at least 1, got {MaxQueue}");
    }
}
