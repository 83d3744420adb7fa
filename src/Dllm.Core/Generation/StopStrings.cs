namespace Dllm.Generation;

/// <summary>
/// Text-level stop sequences. <see cref="FindStop"/> locates the earliest stop string in generated
/// text; <see cref="SafePrefixLength"/> says how much text can be streamed now without ever showing
/// the start of a stop string that later completes.
/// </summary>
public sealed class StopStrings(IReadOnlyList<string> stops)
{
    private readonly string[] _stops = stops.Where(s => s.Length > 0).ToArray();

    public bool Any => _stops.Length > 0;

    /// <summary>Index where the first stop string begins, or -1.</summary>
    public int FindStop(string text)
    {
        var best = -1;
        foreach (var s in _stops)
        {
            var i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    /// <summary>Length of the prefix of <paramref name="text"/> that no stop string can still claim.</summary>
    public int SafePrefixLength(string text)
    {
        var hold = 0;
        foreach (var s in _stops)
            for (var k = Math.Min(s.Length - 1, text.Length); k > hold; k--)
                if (text.AsSpan(text.Length - k).SequenceEqual(s.AsSpan(0, k))) { hold = k; break; }
        return text.Length - hold;
    }
}
