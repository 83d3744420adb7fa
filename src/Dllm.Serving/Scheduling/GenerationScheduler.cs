using System.Diagnostics;
using Dllm.Generation;
using Dllm.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// Batches concurrent requests into shared decoding calls on one dedicated thread. TorchSharp's dispose
/// scopes and no-grad state are thread-static, so every model forward stays on that thread; callers only
/// tokenise (to admit) and read channels. Batching is static: a batch runs to its end, and requests that
/// arrive meanwhile wait for the next one.
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
    private bool _closing;
    private int _disposed;
    private int _running;
    private long _batches, _completed, _cancelled, _failed, _rejected;
    private int _largestBatch;

    public GenerationScheduler(LoadedModel model, SchedulerOptions? options = null, ILogger? logger = null, BatchDecoder? decoder = null)
    {
        Model = model;
        Options = options ?? new SchedulerOptions();
        Options.Validate();
        _decode = decoder ?? BatchDecoders.For(model);
        _log = logger ?? NullLogger.Instance;
        _worker = new Thread(Work) { IsBackground = true, Name = "dllm-decode" };
        _worker.Start();
    }

    public LoadedModel Model { get; }
    public SchedulerOptions Options { get; }

    /// <summary>Raised on the decode thread after every batch; keep handlers short.</summary>
    public event Action<BatchReport>? BatchFinished;

    public SchedulerStats Stats
    {
        get
        {
            lock (_gate)
                return new SchedulerStats(_queue.Count, _running, _batches, _largestBatch, _completed, _cancelled, _failed, _rejected);
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
            var admitted = AdmittedRequest.Admit(Model, request with { Cancellation = abandon.Token });
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
            while (NextBatch() is { } batch)
            {
                Run(batch);
                lock (_gate) _running = 0;
            }
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
            _stopped.TrySetException(e);
        }
    }

    /// <summary>Waits for work and takes the next batch off the queue; null once closing and nothing is left.</summary>
    private List<ScheduledGeneration>? NextBatch()
    {
        lock (_gate)
        {
            while (true)
            {
                DropCancelled();
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
            var picks = BatchComposer.Compose(_queue.Select(g => g.Admitted).ToList(), Options.MaxBatch);
            var batch = picks.Select(i => _queue[i]).ToList();
            for (var k = picks.Length - 1; k >= 0; k--) _queue.RemoveAt(picks[k]);
            // Unregister, not Dispose: Dispose would wait for a running callback, which waits for this lock.
            foreach (var g in batch) g.WhileQueued.Unregister();
            _running = batch.Count;
            _batches++;
            _largestBatch = Math.Max(_largestBatch, batch.Count);
            return batch;
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

    private void Run(List<ScheduledGeneration> batch)
    {
        var clock = Stopwatch.StartNew();
        var finishes = new FinishReason?[batch.Count];
        var forwards = 0;
        try
        {
            foreach (var e in _decode(batch.Select(g => g.Request).ToList(), _hardStop.Token))
            {
                forwards = Math.Max(forwards, e.Step.Forward);
                batch[e.Sequence].Publish(e);
                if (e.Result is { } r) finishes[e.Sequence] = r.Finish;
            }
            foreach (var g in batch) g.Finish(new InvalidOperationException("decoding ended without a result for this request"));
        }
        catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
        {
            foreach (var g in batch) g.Finish(new OperationCanceledException("the server stopped before this request finished"));
        }
        catch (Exception e)
        {
            _log.LogError(e, "a batch of {Size} failed", batch.Count);
            foreach (var g in batch) g.Finish(e);
        }
        lock (_gate)
        {
            foreach (var f in finishes)
            {
                if (f == FinishReason.Cancelled) _cancelled++;
                else if (f is null) _failed++;
                else _completed++;
            }
        }
        var report = new BatchReport(batch.Count, forwards, clock.Elapsed.TotalSeconds, finishes);
        _log.LogDebug("batch of {Size}: {Forwards} forwards in {Seconds:F3} s, finishes {Finishes}", report.Size, report.Forwards, report.Seconds,
            string.Join(",", finishes.Select(f => f?.ToString().ToLowerInvariant() ?? "failed")));
        try
        {
            BatchFinished?.Invoke(report);
        }
        catch (Exception e)
        {
            _log.LogWarning(e, "a BatchFinished handler threw");
        }
    }
}
