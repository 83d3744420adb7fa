using Dllm.Tokenization;

namespace Dllm.Generation;

/// <summary>
/// Follows one sequence's tokens as a decoder fills them in (in any order) and turns the contiguous
/// prefix into text: what can be shown now (never half a character, never the start of a stop
/// string), whether a stop string has appeared, and the final text and tokens. Only tokens the result
/// can keep are shown: none at or past the token limit, none from a stop token on. Block decoding
/// fills a block in any order, so such tokens can be decided before the sequence ends; showing them would
/// stream text the final result drops.
/// </summary>
internal sealed class SequenceText(TextTokenizer tokenizer, StopStrings stops, int limit = int.MaxValue, IReadOnlySet<int>? stopIds = null)
{
    private readonly SortedDictionary<int, int> _tokens = new();
    private readonly List<int> _prefix = [];
    private string _text = "";
    private int _emitted;

    public int StopIndex { get; private set; } = -1;
    public IReadOnlyList<int> Prefix => _prefix;

    public void Apply(SequenceUpdate u)
    {
        if (u.Provisional) return;   // may still be edited: shown once the block restates it as final
        for (var i = 0; i < u.Positions.Length; i++) _tokens[u.Positions[i]] = u.Tokens[i];
        var before = _prefix.Count;
        while (_tokens.TryGetValue(_prefix.Count, out var t)) _prefix.Add(t);
        if (_prefix.Count != before) Refresh();
    }

    /// <summary>Called by decoders with the tokens generated so far: true once a stop string shows up.</summary>
    public bool StopsAt(IReadOnlyList<int> generated)
    {
        if (!stops.Any) return false;
        _prefix.Clear();
        _prefix.AddRange(generated);
        Refresh();
        return StopIndex >= 0;
    }

    private void Refresh()
    {
        var kept = Math.Min(_prefix.Count, limit);
        if (stopIds is { Count: > 0 } && _prefix.FindIndex(0, kept, stopIds.Contains) is var stopAt and >= 0) kept = stopAt;
        _text = tokenizer.Decode(_prefix.Take(kept), skipSpecialTokens: true);
        if (stops.Any && StopIndex < 0) StopIndex = stops.FindStop(_text);
    }

    /// <summary>New displayable text since the last call.</summary>
    public string TakeDelta(bool final)
    {
        var visible = StopIndex >= 0 ? _text[..StopIndex] : _text;
        var end = visible.Length;
        if (!final)
        {
            while (end > 0 && visible[end - 1] == '\uFFFD') end--;       // an incomplete UTF-8 sequence
            end = Math.Min(end, stops.SafePrefixLength(visible[..end]));
        }
        if (end <= _emitted) return "";
        var delta = visible[_emitted..end];
        _emitted = end;
        return delta;
    }

    /// <summary>1 when the sequence ended on a stop token (held just past the kept tokens), else 0.</summary>
    public int StopTokenAt(int finalLength, ISet<int> stopIds) =>
        finalLength >= 0 && finalLength < _prefix.Count && stopIds.Contains(_prefix[finalLength]) ? 1 : 0;

    /// <summary>Final text (cut at a stop string) and the tokens kept.</summary>
    public (string Text, int[] Tokens) Final(int finalLength)
    {
        var tokens = _prefix.Take(finalLength < 0 ? _prefix.Count : Math.Min(finalLength, _prefix.Count)).ToArray();
        var text = tokenizer.Decode(tokens, skipSpecialTokens: true);
        var stop = stops.FindStop(text);
        return (stop >= 0 ? text[..stop] : text, tokens);
    }
}
