using Dllm.Generation;

namespace Dllm.Serving.Scheduling;

/// <summary>A snapshot of the scheduler's queue and counters (served on /health, asserted by tests).</summary>
public sealed record SchedulerStats(
    int Queued,
    int Running,
    long Batches,
    int LargestBatch,
    long Completed,
    long Cancelled,
    long Failed,
    long Rejected);

/// <summary>What one batch did: its size, the decoding forwards it took, and how each sequence ended (null: failed).</summary>
public sealed record BatchReport(int Size, int Forwards, double Seconds, IReadOnlyList<FinishReason?> Finishes);
