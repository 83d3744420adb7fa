using System.Diagnostics;
using Dllm.Generation;
using Dllm.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// Batches concurrent requests continuously on one dedicated thread. TorchSharp's dispose scopes and no-grad
/// state are thread-static, so every model forward stays on that thread; callers only tokenise (to admit) and
/// read channels. One batch runs at a time; between its steps, waiting requests of the same kind (mode and block
/// settings) join it, up to the batch size, and take their place at the decoder's next join point (the next
/// step for AR, the next block for diffusion). A request of another kind at the head of the queue stops further
/// joins, so the batch drains and the next one opens with it (no request waits behind later arrivals).
/// </summary>
/// <remarks>Dispose the scheduler before the model it decodes with.</remarks>
public sealed class GenerationScheduler : IAsyncDisposable, IDisposable
{
    private readonly object _gate = new();
    private readonly List<ScheduledGeneration> _queue = [];
    private readonly BatchDecoder _decode;
    private readonly ILogger _log;
    private readonly Thread _worker;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _hardStop = new();
    private readonly BatchSizeMeter _meter = new();
    private readonly PrefixCache _prefixes;   // the decode thread's; disposed when it ends
    private RunningBatch? _batch;              // the decode thread's own
    private bool _closing;
    private int _disposed;
    private int _running;
    private long _batches, _completed, _cancelled, _failed, _rejected;
    private int _largestBatch;
    private long _kvCacheBytes, _largestKvCacheBytes;   // after the running batch's last step; the most ever

    public GenerationScheduler(LoadedModel model, SchedulerOptions? options = null, ILogger? logger = null, BatchDecoder? decoder = null)
    {
        Model = model;
        Options = options ?? new SchedulerOptions();
        Options.Validate();
        _prefixes = new PrefixCache(Options.PrefixCacheTokens);
        _decode = decoder ?? BatchDecoders.For(model, _prefixes, Options.PrefillChunk);
        _log = logger ?? NullLogger.Instance;
        _worker = new Thread(Work) { IsBackground = true, Name = "dllm-decode" };
        _worker.Start();
    }

    public LoadedModel Model { get; }
    public SchedulerOptions Options { get; }

    /// <summary>Raised on the decode thread when a running batch empties (or fails); keep handlers short.</summary>
    public event Action<BatchReport>? BatchFinished;

    /// <summary>True once draining or stopped: new requests are refused.</summary>
    public bool IsClosing
    {
        get
        {
            lock (_gate) return _closing;
        }
    }

    public SchedulerStats Stats
    {
        get
        {
            lock (_gate)
                return new SchedulerStats(_queue.Count, _running, _batches, _largestBatch, _completed, _cancelled, _failed, _rejected,
                    _meter.Forwards, _meter.Mean, _meter.MeanLastMinute(Environment.TickCount64 / 1000),
                    _prefixes.StoredTokens, _prefixes.ReusedTokens, _prefixes.LookedUpTokens, _kvCacheBytes, _largestKvCacheBytes);
        }
    }

    /// <summary>
    /// Admits and queues a request. Throws <see cref="DllmException"/> (bad settings, prompt over the context),
    /// <see cref="QueueFullException"/> or <see cref="SchedulerClosedException"/>; the request's own
    /// <see cref="GenerationRequest.Cancellation"/> takes it out of the queue or its batch.
    /// </summary>
    public ScheduledGeneration Submit(GenerationRequest request)
    {
        var abandon = CancellationTokenSource.CreateLinkedTokenSource(request.Cancellation);
        try
        {
            var admitted = AdmittedRequest.Admit(Model, request with { Cancellation = abandon.Token }, Options.MaxBatchTokens);
            var generation = new ScheduledGeneration(admitted, abandon);
            lock (_gate)
            {
                if (_closing) throw new SchedulerClosedException();
                DropCancelled();
                if (_queue.Count >= Options.MaxQueue)
                {
                    _rejected++;
                    throw new QueueFullException(Options.MaxQueue);
                }
                _queue.Add(generation);
                // A caller that leaves while waiting frees its slot at once, not when the next batch forms.
                // Registered under the lock (the decode thread reads it there); an already-cancelled token
                // runs the callback here, which re-enters the lock and drops the request.
                generation.WhileQueued = generation.Request.Cancellation.UnsafeRegister(_ => DropIfQueued(generation), null);
                Monitor.Pulse(_gate);
            }
            return generation;
        }
        catch
        {
            abandon.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Stops taking requests and waits until the queued and running ones are done. When
    /// <paramref name="hardStop"/> fires first, the running batch is cancelled and the queue failed.
    /// </summary>
    public async Task DrainAsync(CancellationToken hardStop = default)
    {
        lock (_gate)
        {
            _closing = true;
            Monitor.PulseAll(_gate);
        }
        using (hardStop.Register(() => _hardStop.Cancel()))
            await _stopped.Task.ConfigureAwait(false);
    }

    /// <summary>Stops at once: the running batch is cancelled, waiting requests fail, the decode thread ends.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await DrainAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
    }

    /// <inheritdoc cref="DisposeAsync"/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_gate)
        {
            _closing = true;
            Monitor.PulseAll(_gate);
        }
        _hardStop.Cancel();
        _worker.Join();
    }

    private void Work()
    {
        try
        {
            while (NextJoiners() is { } joining)
            {
                foreach (var g in joining) Join(g);
                StepBatch();
            }
            _prefixes.Dispose();
            _stopped.TrySetResult();
        }
        catch (Exception e)
        {
            // A bug in the loop itself: fail everyone rather than leave callers waiting forever.
            _log.LogCritical(e, "the decode thread failed");
            lock (_gate)
            {
                _closing = true;
                foreach (var g in _queue) g.Finish(e);
                _queue.Clear();
            }
            EndBatch(e);
            _prefixes.Dispose();
            _stopped.TrySetException(e);
        }
    }

    /// <summary>
    /// Between two steps: closes an emptied batch, waits for work when idle, and takes the requests that may join the
    /// running batch now (opening one for the oldest request if none runs). Null once closing and nothing is left.
    /// </summary>
    private List<ScheduledGeneration>? NextJoiners()
    {
        if (_batch is { Session.Count: 0 }) EndBatch(null);
        lock (_gate)
        {
            while (true)
            {
                DropCancelled();
                if (_batch is not null) break;
                if (_queue.Count > 0 && !_hardStop.IsCancellationRequested) break;
                if (_closing)
                {
                    foreach (var g in _queue) g.Finish(new OperationCanceledException("the server stopped before this request ran"));
                    _failed += _queue.Count;
                    _queue.Clear();
                    return null;
                }
                Monitor.Wait(_gate);
            }
            if (_hardStop.IsCancellationRequested) return [];
            if (_batch is null)
            {
                _batch = new RunningBatch(_queue[0].Admitted.Key, _decode(_queue[0].Admitted.Key));
                _batches++;
            }
            // Members change only on this thread (joins and finishes), so their reservations are read safely here.
            var tokenRoom = Options.MaxBatchTokens > 0 ? Options.MaxBatchTokens - _batch.Members.Values.Sum(g => g.Admitted.ReservedTokens) : long.MaxValue;
            var picks = BatchComposer.Compose(_queue.Select(g => g.Admitted).ToList(), _batch.Key, Options.MaxBatch - _batch.Session.Count, tokenRoom);
            var joining = picks.Select(i => _queue[i]).ToList();
            for (var k = picks.Length - 1; k >= 0; k--) _queue.RemoveAt(picks[k]);
            // Unregister, not Dispose: Dispose would wait for a running callback, which waits for this lock.
            foreach (var g in joining) g.WhileQueued.Unregister();
            _running = _batch.Session.Count + joining.Count;
            return joining;
        }
    }

    private void Join(ScheduledGeneration generation)
    {
        var batch = _batch!;
        try
        {
            batch.Members[batch.Session.Add(generation.Request)] = generation;
            batch.Finishes.Add(null);
            batch.Order[generation] = batch.Finishes.Count - 1;
        }
        catch (Exception e)
        {
            // Admission checked it already; a request the decoder still refuses fails alone.
            _log.LogError(e, "a request could not join the batch");
            generation.Finish(e);
            lock (_gate) _failed++;
        }
    }

    /// <summary>One step of the running batch: publish its events, count its forward; a failure ends the batch.</summary>
    private void StepBatch()
    {
        var batch = _batch;
        if (batch is null) return;
        try
        {
            if (_hardStop.IsCancellationRequested) throw new OperationCanceledException(_hardStop.Token);
            var step = batch.Session.Step(_hardStop.Token);
            if (step is null) return;
            var cacheBytes = batch.Session.KvCacheBytes;   // read here, on the decoding thread that owns the tensors
            lock (_gate)
            {
                (_kvCacheBytes, _largestKvCacheBytes) = (cacheBytes, Math.Max(_largestKvCacheBytes, cacheBytes));
                if (step.Rows > 0)
                {
                    _meter.Record(step.Rows, Environment.TickCount64 / 1000);
                    _largestBatch = Math.Max(_largestBatch, step.Rows);
                }
            }
            foreach (var e in step.Events)
            {
                if (!batch.Members.TryGetValue(e.Sequence, out var g)) continue;
                g.Publish(e);
                if (e.Result is not { } r) continue;
                batch.Finishes[batch.Order[g]] = r.Finish;
                batch.Members.Remove(e.Sequence);
                lock (_gate)
                {
                    if (r.Finish == FinishReason.Cancelled) _cancelled++;
                    else _completed++;
                }
            }
            lock (_gate) _running = batch.Session.Count;
        }
        catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
        {
            EndBatch(new OperationCanceledException("the server stopped before this request finished"));
        }
        catch (Exception e)
        {
            _log.LogError(e, "a batch of {Size} failed", batch.Members.Count);
            EndBatch(e);
        }
    }

    /// <summary>Closes the running batch: members still in it fail with <paramref name="error"/>; reports the batch.</summary>
    private void EndBatch(Exception? error)
    {
        if (_batch is not { } batch) return;
        _batch = null;
        foreach (var g in batch.Members.Values)
            g.Finish(error ?? new InvalidOperationException("decoding ended without a result for this request"));
        lock (_gate)
        {
            _failed += batch.Members.Count;
            _running = 0;
            _kvCacheBytes = 0;
        }
        batch.Session.Dispose();
        var report = new BatchReport(batch.Finishes.Count, batch.Session.Forwards, batch.Clock.Elapsed.TotalSeconds, batch.Finishes);
        _log.LogDebug("batch of {Size}: {Forwards} forwards in {Seconds:F3} s, finishes {Finishes}", report.Size, report.Forwards, report.Seconds,
            string.Join(",", report.Finishes.Select(f => f?.ToString().ToLowerInvariant() ?? "failed")));
        try
        {
            BatchFinished?.Invoke(report);
        }
        catch (Exception e)
        {
            _log.LogWarning(e, "a BatchFinished handler threw");
        }
    }

    private void DropIfQueued(ScheduledGeneration generation)
    {
        lock (_gate)
        {
            if (!_queue.Remove(generation)) return;   // already decoding: the decoder drops it at its next step
            generation.Finish(new OperationCanceledException("the request was cancelled while it waited"));
            _cancelled++;
        }
    }

    // Requests whose caller left while they waited: they never reach the model.
    private void DropCancelled()
    {
        for (var i = _queue.Count - 1; i >= 0; i--)
        {
            if (!_queue[i].IsCancelled) continue;
            _queue[i].Finish(new OperationCanceledException("the request was cancelled while it waited"));
            _queue.RemoveAt(i);
            _cancelled++;
        }
    }

    /// <summary>The running batch: its session, which request each sequence id is, and how each member ended so far.</summary>
    private sealed class RunningBatch(BatchKey key, IGenerationSession session)
    {
        public BatchKey Key { get; } = key;
        public IGenerationSession Session { get; } = session;
        public Dictionary<int, ScheduledGeneration> Members { get; } = [];
        public Dictionary<ScheduledGeneration, int> Order { get; } = [];
        public List<FinishReason?> Finishes { get; } = [];
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
    }
}
