namespace Dllm.Tokenization;

/// <summary>
/// Turns a stream of ids into text chunks whose concatenation is Decode(all ids). Decoding one id at a
/// time would be wrong: a character split over byte tokens is invalid until its last byte arrives, and
/// decoders like Strip/Metaspace treat the first token specially. So each step decodes a small window of
/// recent ids, and emits what the window adds beyond the text it already produced; a window whose text
/// ends in U+FFFD is waiting for more bytes and emits nothing. (HF's DecodeStream works the same way.)
/// Not thread-safe: one instance per stream.
/// </summary>
public sealed class StreamingDecoder
{
    private const char Replacement = '\uFFFD';
    private readonly TextTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _window = new();
    private string _windowText = ""; // decoded text of _window[.._emittedCount], already emitted
    private int _emittedCount;

    public StreamingDecoder(TextTokenizer tokenizer, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        (_tokenizer, _skipSpecialTokens) = (tokenizer, skipSpecialTokens);
    }

    /// <summary>Adds one id; returns the newly completed text, or "" while a character is still incomplete.</summary>
    public string Push(int id)
    {
        _window.Add(id);
        string text = _tokenizer.Decode(_window, _skipSpecialTokens);
        if (text.Length <= _windowText.Length || text[^1] == Replacement) return "";
        string chunk = NewText(text);
        // Keep only the ids since the last emission: they give the next decode its left context.
        _window.RemoveRange(0, _emittedCount);
        _windowText = _tokenizer.Decode(_window, _skipSpecialTokens);
        _emittedCount = _window.Count;
        return chunk;
    }

    /// <summary>Returns whatever is still held back (e.g. an unfinished byte sequence, as U+FFFD) and resets.</summary>
    public string Flush()
    {
        string text = _tokenizer.Decode(_window, _skipSpecialTokens);
        string chunk = text.Length > _windowText.Length ? NewText(text) : "";
        _window.Clear();
        _windowText = "";
        _emittedCount = 0;
        return chunk;
    }

    // Only a malformed byte run (bytes that never form a character) can rewrite text already emitted; we
    // cannot take it back, so we continue after the common prefix rather than fail mid-stream.
    private string NewText(string text) =>
        text.StartsWith(_windowText, StringComparison.Ordinal)
            ? text[_windowText.Length..]
            : text[CommonPrefixLength(text, _windowText)..];

    private static int CommonPrefixLength(string a, string b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return n;
    }
}
