using System.Runtime.InteropServices;

namespace Dllm.Tokenization;

/// <summary>
/// How often each pre-token occurs in the documents: BPE merges never cross pre-token boundaries, so the
/// trainer needs only these counts, not the text. Special tokens written in a document are cut out first,
/// as the tokenizer does when encoding, so their characters never feed the merges.
/// </summary>
internal static class PreTokenCounter
{
    public static Dictionary<string, long> Count(IEnumerable<string> documents, string pattern, IReadOnlyList<string> specialTokens)
    {
        var regex = new PreTokenRegex(pattern, "bpe trainer pre-tokenizer");
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        // Looks pieces up by span, so only the first occurrence of a pre-token allocates a string.
        Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (string document in documents)
        {
            ArgumentNullException.ThrowIfNull(document, nameof(documents));
            foreach (string segment in WithoutSpecials(document, specialTokens))
                foreach ((int start, int length) in regex.Split(segment))
                    CollectionsMarshal.GetValueRefOrAddDefault(lookup, segment.AsSpan(start, length), out _)++;
        }
        return counts;
    }

    /// <summary>The text between occurrences of any special token.</summary>
    private static IEnumerable<string> WithoutSpecials(string text, IReadOnlyList<string> specialTokens)
    {
        IEnumerable<string> segments = [text];
        foreach (string special in specialTokens)
            segments = segments.SelectMany(s => s.Contains(special, StringComparison.Ordinal) ? s.Split(special) : [s]);
        return segments;
    }
}
