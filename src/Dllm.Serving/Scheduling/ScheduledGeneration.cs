using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Dllm.Generation;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// One submitted request as its caller sees it: the admitted settings, and its events as they are decoded.
/// The decode thread writes into an unbounded channel, so a slow reader never stalls its batchmates;
/// a reader that stops early abandons the request, and its sequence leaves the batch at the next step.
/// </summary>
public sealed class ScheduledGeneration
{
    private readonly Channel<GenerationEvent> _events = Channel.CreateUnbounded<GenerationEvent>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true, AllowSynchronousContinuations = false });
    private readonly CancellationTokenSource _abandon;
    private int _reading;

    internal ScheduledGeneration(AdmittedRequest admitted, CancellationTokenSource abandon)
    {
        Admitted = admitted;
        _abandon = abandon;
    }

    internal AdmittedRequest Admitted { get; }
    internal GenerationRequest Request => Admitted.Request;
    internal bool IsCancelled => Request.Cancellation.IsCancellationRequested;
    internal bool IsDone { get; private set; }
    /// <summary>The cancellation callback that takes the request out of the queue; unregistered once it decodes.</summary>
    internal CancellationTokenRegistration WhileQueued { get; set; }

    public int PromptTokens => Admitted.PromptTokens;
    /// <summary>The token limit after capping at the context.</summary>
    public int MaxNewTokens => Admitted.MaxNewTokens;
    public DecodeMode Mode => Admitted.Key.Mode;

    /// <summary>
    /// The request's events, the last one carrying its <see cref="GenerationResult"/>. Throws what failed
    /// the batch, or <see cref="OperationCanceledException"/> when <paramref name="cancel"/> fires. Read once.
    /// </summary>
    public async IAsyncEnumerable<GenerationEvent> Events([EnumeratorCancellation] CancellationToken cancel = default)
    {
        if (Interlocked.Exchange(ref _reading, 1) != 0) throw new InvalidOperationException("a generation's events can be read only once");
        try
        {
            while (await WaitAsync(cancel).ConfigureAwait(false))
                while (_events.Reader.TryRead(out var e))
                    yield return e;
        }
        finally
        {
            // Cancelling after the result is harmless; before it, this is what makes the sequence leave its batch.
            _abandon.Cancel();
            _abandon.Dispose();
        }
    }

    private async ValueTask<bool> WaitAsync(CancellationToken cancel)
    {
        try
        {
            return await _events.Reader.WaitToReadAsync(cancel).ConfigureAwait(false);
        }
        catch (ChannelClosedException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    // Called on the decode thread only.
    internal void Publish(GenerationEvent e)
    {
        _events.Writer.TryWrite(e);
        if (e.Result is not null) Finish(null);
    }

    internal void Finish(Exception? error)
    {
        if (IsDone) return;
        IsDone = true;
        _events.Writer.TryComplete(error);
    }
}
