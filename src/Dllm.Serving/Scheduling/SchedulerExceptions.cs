namespace Dllm.Serving.Scheduling;

/// <summary>The wait queue is full: the caller should retry later (HTTP 429).</summary>
public sealed class QueueFullException(int capacity)
    : Exception($"the server is busy: {capacity} request(s) are already waiting; retry later")
{
    public int Capacity { get; } = capacity;
}

/// <summary>The scheduler is draining or stopped and takes no new requests (HTTP 503).</summary>
public sealed class SchedulerClosedException()
    : Exception("the server is shutting down and takes no new requests");
