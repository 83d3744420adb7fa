using System.Diagnostics;

namespace Dllm.Generation;

/// <summary>
/// Optional timing of a decoding run: wall time inside model forwards versus everything else
/// (sampling, selection, bookkeeping), for the decoder-overhead figure in the benchmarks.
/// </summary>
public sealed class DecodeProfile
{
    private readonly Stopwatch _forward = new();

    public TimeSpan ForwardTime => _forward.Elapsed;
    public int Forwards { get; private set; }

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
