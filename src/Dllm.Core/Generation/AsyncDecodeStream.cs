using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Dllm.Generation;

/// <summary>
/// A decoder's step stream as an <see cref="IAsyncEnumerable{T}"/>. Decoding is CPU- or GPU-bound work,
/// so it runs on its own long-running thread and hands each event over through a small bounded channel:
/// the caller awaits events without blocking a thread-pool thread, and the decoder stays at most a few
/// steps ahead of a slow reader. A reader that stops early (or cancels) stops the decoder at its next step.
/// </summary>
public static class AsyncDecodeStream
{
    public static async IAsyncEnumerable<T> Run<T>(Func<CancellationToken, IEnumerable<T>> decode,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var channel = Channel.CreateBounded<T>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
        var producer = Task.Factory.StartNew(() =>
        {
            try
            {
                foreach (var item in decode(stop.Token))
                    // Blocking here is fine: this is the decoder's own thread, not a pool thread.
                    channel.Writer.WriteAsync(item, stop.Token).AsTask().GetAwaiter().GetResult();
                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            while (await WaitAsync(channel.Reader).ConfigureAwait(false))
                while (channel.Reader.TryRead(out var item))
                {
                    cancel.ThrowIfCancellationRequested();
                    yield return item;
                }
        }
        finally
        {
            stop.Cancel();
            // Wait for the decoder to leave its step, so nothing touches the model after the caller moves on.
            try { await producer.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
        cancel.ThrowIfCancellationRequested();
    }

    /// <summary>Waits for the next event; a decoder failure surfaces as itself, not as a closed channel.</summary>
    private static async ValueTask<bool> WaitAsync<T>(ChannelReader<T> reader)
    {
        try
        {
            return await reader.WaitToReadAsync().ConfigureAwait(false);
        }
        catch (ChannelClosedException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }
}
