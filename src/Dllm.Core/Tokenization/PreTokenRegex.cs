using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Dllm.Tokenization;

/// <summary>
/// HF's Split pre-tokenizer with behavior "Isolated": every regex match is a piece, and so is every run
/// of text between matches. The patterns (GPT-2, Qwen, Llama-3) are written for engines that see code
/// points, while .NET sees UTF-16 units: a class such as [^\p{L}\p{N}]? would take half of an emoji.
/// So before matching, each astral code point is replaced by a BMP stand-in of the same Unicode category
/// (all these patterns test only categories, whitespace and ASCII literals), and offsets are mapped back.
/// </summary>
internal sealed class PreTokenRegex
{
    /// <summary>GPT-2's pattern, used by the ByteLevel pre-tokenizer when use_regex is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Lazy<Dictionary<UnicodeCategory, char>> StandIns = new(BuildStandIns);

    public PreTokenRegex(string pattern, string path)
    {
        // A match, or else the longest run of chars at which the pattern does not match (a gap).
        Regex = HfRegex.Create($"(?:{pattern})|(?:(?!(?:{pattern}))(?s:.))+", path);
    }

    /// <summary>The gap-preserving regex; also handed to the library's RegexPreTokenizer.</summary>
    public Regex Regex { get; }

    public List<(int Start, int Length)> Split(string text)
    {
        var pieces = new List<(int, int)>();
        if (text.Length == 0) return pieces;
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            for (Match m = Regex.Match(text); m.Success; m = m.NextMatch())
                if (m.Length > 0) pieces.Add((m.Index, m.Length));
            return pieces;
        }

        var (proxy, starts) = ReplaceAstral(text);
        for (Match m = Regex.Match(proxy); m.Success; m = m.NextMatch())
            if (m.Length > 0) pieces.Add((starts[m.Index], starts[m.Index + m.Length] - starts[m.Index]));
        return pieces;
    }

    /// <summary>One char per code point; starts[i] is where proxy char i begins in the original text.</summary>
    private static (string Proxy, int[] Starts) ReplaceAstral(string text)
    {
        var proxy = new StringBuilder(text.Length);
        var starts = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            starts.Add(i);
            if (char.IsSurrogatePair(text, i))
            {
                proxy.Append(StandIns.Value[CharUnicodeInfo.GetUnicodeCategory(text, i)]);
                i += 2;
            }
            else
            {
                proxy.Append(text[i]);
                i++;
            }
        }
        starts.Add(text.Length);
        return (proxy.ToString(), starts.ToArray());
    }

    /// <summary>For each category, a non-ASCII BMP char of that category (ASCII is avoided since patterns name ASCII literally).</summary>
    private static Dictionary<UnicodeCategory, char> BuildStandIns()
    {
        var map = new Dictionary<UnicodeCategory, char>();
        for (int c = 0x80; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            map.TryAdd(CharUnicodeInfo.GetUnicodeCategory((char)c), (char)c);
        }
        // Lone surrogates keep their own category; any char of it will do.
        map.TryAdd(UnicodeCategory.Surrogate, '\uD800');
        return map;
    }
}
