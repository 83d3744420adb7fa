using Dllm.Generation;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// A snapshot of the scheduler's queue and counters (served on /health, asserted by tests). <see cref="Running"/>
/// counts the requests in the running batch (decoding or about to join it), <see cref="Batches"/> the running batches
/// started (a batch lives while requests keep it busy), <see cref="LargestBatch"/> the most sequences one decoding
/// forward served, <see cref="Forwards"/> all decoding forwards, and <see cref="MeanBatchSize"/> sequences per
/// decoding forward since start and over the last minute (0 when no forward ran). The prefix cache's counters: tokens
/// stored now, prompt tokens taken from it instead of prefilled, and prompt tokens looked up (see <see cref="Dllm.Models.PrefixCache"/>).
/// <see cref="KvCacheBytes"/> is what the running batch's key/value caches held after its last step (0 between
/// batches), <see cref="LargestKvCacheBytes"/> the most they ever held.
/// </summary>
public sealed record SchedulerStats(
    int Queued,
    int Running,
    long Batches,
    int LargestBatch,
    long Completed,
    long Cancelled,
    long Failed,
    long Rejected,
    long Forwards = 0,
    double MeanBatchSize = 0,
    double MeanBatchSizeLastMinute = 0,
    long PrefixStoredTokens = 0,
    long PrefixReusedTokens = 0,
    long PrefixLookedUpTokens = 0,
    long KvCacheBytes = 0,
    long LargestKvCacheBytes = 0);

/// <summary>
/// What one running batch did from its start until it emptied: how many sequences went through it, the decoding
/// forwards it took, and how each sequence ended (null: failed), in the order they joined.
/// </summary>
public sealed record BatchReport(int Size, int Forwards, double Seconds, IReadOnlyList<FinishReason?> Finishes);

/// <summary>
/// Sequences per decoding forward, since start and over a sliding minute. The minute is kept as 60 one-second
/// buckets, so memory is constant however fast forwards come; the window is "this second and the 59 before it".
/// </summary>
public sealed class BatchSizeMeter
{
    public const int WindowSeconds = 60;
    private readonly long[] _second = new long[WindowSeconds], _forwards = new long[WindowSeconds], _rows = new long[WindowSeconds];
    private long _totalForwards, _totalRows;

    public long Forwards => _totalForwards;

    /// <summary>One decoding forward that served <paramref name="rows"/> sequences, at <paramref name="nowSeconds"/> (any monotonic clock).</summary>
    public void Record(int rows, long nowSeconds)
    {
        var slot = (int)(nowSeconds % WindowSeconds);
        if (_second[slot] != nowSeconds) (_second[slot], _forwards[slot], _rows[slot]) = (nowSeconds, 0, 0);
        _forwards[slot]++;
        _rows[slot] += rows;
        _totalForwards++;
        _totalRows += rows;
    }

    public double Mean => _totalForwards == 0 ? 0 : (double)_totalRows / _totalForwards;

    public double MeanLastMinute(long nowSeconds)
    {
        long forwards = 0, rows = 0;
        for (var i = 0; i < WindowSeconds; i++)
        {
            if (_second[i] <= nowSeconds - WindowSeconds || _second[i] > nowSeconds || _forwards[i] == 0) continue;
            forwards += _forwards[i];
            rows += _rows[i];
        }
        return forwards == 0 ? 0 : (double)rows / forwards;
    }
}
