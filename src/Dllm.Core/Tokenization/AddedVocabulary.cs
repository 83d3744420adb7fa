using System.Globalization;
using System.Text;

namespace Dllm.Tokenization;

/// <summary>A piece of input text: either plain text for the model, or one added token.</summary>
internal readonly record struct TextSegment(string Text, int Offset, int? TokenId);

/// <summary>
/// Finds added tokens in text the way Hugging Face's AddedVocabulary does: leftmost-longest matches,
/// first against the raw text for tokens with normalized=false, then against each normalised remainder
/// for tokens with normalized=true; single_word drops a match inside a word, lstrip/rstrip swallow the
/// whitespace beside a match.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<int, AddedToken> _byId = new();
    private readonly Dictionary<string, int> _byContent = new(StringComparer.Ordinal);
    private readonly HashSet<string> _specialContents = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _decodeForms = new();
    private readonly Matcher _raw;
    private readonly Matcher _normalized;

    public AddedVocabulary(IReadOnlyList<AddedToken> tokens, TextNormalizer normalizer)
    {
        Tokens = tokens;
        var raw = new List<(string, AddedToken)>();
        var normalized = new List<(string, AddedToken)>();
        foreach (AddedToken token in tokens)
        {
            _byId[token.Id] = token;
            _byContent[token.Content] = token.Id;
            if (token.Special) _specialContents.Add(token.Content);
            if (!token.Normalized)
            {
                raw.Add((token.Content, token));
                continue;
            }
            // A normalized token is looked for in normalised text, so its pattern is its normalised form;
            // HF also decodes it from that form.
            string form = normalizer.Normalize(token.Content);
            if (form.Length == 0) continue;
            if (form != token.Content) _decodeForms[token.Id] = form;
            normalized.Add((form, token));
        }
        _raw = new Matcher(raw);
        _normalized = new Matcher(normalized);
    }

    public IReadOnlyList<AddedToken> Tokens { get; }

    public int MaxId => Tokens.Count == 0 ? -1 : Tokens.Max(t => t.Id);

    public AddedToken? this[int id] => _byId.GetValueOrDefault(id);

    public int? IdOf(string content) => _byContent.TryGetValue(content, out int id) ? id : null;

    public bool IsSpecialContent(string token) => _specialContents.Contains(token);

    /// <summary>The token text handed to the decoder (the normalised form for normalized tokens, as HF does).</summary>
    public string? DecodeForm(int id) =>
        _decodeForms.TryGetValue(id, out string? form) ? form : _byId.GetValueOrDefault(id)?.Content;

    public List<TextSegment> SplitRaw(string text) => _raw.Split(text);

    public List<TextSegment> SplitNormalized(string text) => _normalized.Split(text);

    private sealed class Matcher
    {
        // Candidates by first char, longest first: the first that matches at a position is the longest.
        private readonly Dictionary<char, (string Pattern, AddedToken Token)[]> _byFirstChar;

        public Matcher(List<(string Pattern, AddedToken Token)> entries) =>
            _byFirstChar = entries
                .GroupBy(e => e.Pattern[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(e => e.Pattern.Length).ToArray());

        public List<TextSegment> Split(string text)
        {
            var segments = new List<TextSegment>();
            int emitted = 0; // end of the last segment
            int i = 0;
            while (i < text.Length && _byFirstChar.Count > 0)
            {
                if (!TryMatchAt(text, i, out string pattern, out AddedToken token))
                {
                    i++;
                    continue;
                }
                int start = i, stop = i + pattern.Length;
                i = stop;
                if (token.SingleWord && (IsWordCharBefore(text, start) || IsWordCharAt(text, stop)))
                    continue;
                if (token.LStrip)
                    while (start > emitted && char.IsWhiteSpace(text[start - 1])) start--;
                if (token.RStrip)
                    while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
                if (emitted < start) segments.Add(new TextSegment(text[emitted..start], emitted, null));
                segments.Add(new TextSegment(text[start..stop], start, token.Id));
                emitted = i = stop;
            }
            // Like HF, an empty input still yields one (empty) text segment, so it reaches the model.
            if (emitted < text.Length || segments.Count == 0)
                segments.Add(new TextSegment(text[emitted..], emitted, null));
            return segments;
        }

        private bool TryMatchAt(string text, int i, out string pattern, out AddedToken token)
        {
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
            {
                foreach (var (p, t) in candidates)
                {
                    if (i + p.Length <= text.Length && text.AsSpan(i, p.Length).SequenceEqual(p))
                    {
                        (pattern, token) = (p, t);
                        return true;
                    }
                }
            }
            (pattern, token) = (string.Empty, null!);
            return false;
        }

        private static bool IsWordCharBefore(string text, int index) =>
            index > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, index), out Rune r, out _) == System.Buffers.OperationStatus.Done && IsWord(r);

        private static bool IsWordCharAt(string text, int index) =>
            index < text.Length && Rune.DecodeFromUtf16(text.AsSpan(index), out Rune r, out _) == System.Buffers.OperationStatus.Done && IsWord(r);

        // Regex \w: letters, marks, decimal digits and connector punctuation.
        private static bool IsWord(Rune r) => Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark
                or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }
}
