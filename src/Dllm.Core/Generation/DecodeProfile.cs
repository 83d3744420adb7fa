using System.Diagnostics;

namespace Dllm.Generation;

/// <summary>
/// Optional timing of a decoding run: wall time inside model forwards versus everything else
/// (sampling, selection, bookkeeping), for the decoder-overhead figure in the benchmarks.
/// <see cref="ForwardTime"/> covers every forward, the prompt prefill included; <see cref="Forwards"/>
/// counts the decoding forwards only, as tokens per forward does.
/// </summary>
public sealed class DecodeProfile
{
    private readonly Stopwatch _forward = new();

    public TimeSpan ForwardTime => _forward.Elapsed;
    public int Forwards { get; private set; }

    internal void TimePrefill(Action prefill)
    {
        _forward.Start();
        try { prefill(); }
        finally { _forward.Stop(); }
    }

    internal T TimeForward<T>(Func<T> forward)
    {
        _forward.Start();
        try { return forward(); }
        finally
        {
            _forward.Stop();
            Forwards++;
        }
    }
}
