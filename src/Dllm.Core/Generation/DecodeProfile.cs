using System.Diagnostics;

namespace Dllm.Generation;

/// <summary>
/// Optional timing of a decoding run: wall time inside model forwards versus everything else
/// (sampling, selection, bookkeeping), for the decoder-overhead figure in the benchmarks.
/// <see cref="ForwardTime"/> covers every forward, the prompt prefill and the LM head included (the AR decoder's
/// forward holds its head too); <see cref="Forwards"/>
/// counts the decoding forwards only, as tokens per forward does.
/// </summary>
public sealed class DecodeProfile
{
    private readonly Stopwatch _forward = new();

    public TimeSpan ForwardTime => _forward.Elapsed;
    public int Forwards { get; private set; }

    /// <summary>Prompt prefill forwards (a chunk, a whole prompt, or several prompts together), not decoding forwards.</summary>
    public int PrefillForwards { get; private set; }

    /// <summary>Decoding forwards whose attention ran in several row groups (rows of very different lengths, see KvCache.RowGroups).</summary>
    public int RaggedForwards { get; private set; }

    internal static void Ragged(DecodeProfile? profile)
    {
        if (profile is not null) profile.RaggedForwards++;
    }

    /// <summary>Runs the prompt prefill, timed as forward work but not counted as a decoding forward.</summary>
    internal static T Prefill<T>(DecodeProfile? profile, Func<T> prefill)
    {
        if (profile is null) return prefill();
        profile.PrefillForwards++;
        return profile.Time(prefill, counted: false);
    }

    /// <summary>Runs an LM head the decoder applies to a forward's outputs: model work, timed, not a forward of its own.</summary>
    internal static T Head<T>(DecodeProfile? profile, Func<T> head) => profile is null ? head() : profile.Time(head, counted: false);

    /// <summary>Runs one decoding forward, timed and counted.</summary>
    internal static T Forward<T>(DecodeProfile? profile, Func<T> forward) => profile is null ? forward() : profile.Time(forward, counted: true);

    private T Time<T>(Func<T> forward, bool counted)
    {
        _forward.Start();
        try { return forward(); }
        finally
        {
            _forward.Stop();
            if (counted) Forwards++;
        }
    }
}
