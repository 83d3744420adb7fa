using System.Globalization;
using System.Text.RegularExpressions;

namespace Dllm.Evaluation;

/// <summary>
/// How a generated answer is compared with the reference: numbers by value (the "#### N" of GSM8K,
/// else the last number in the text), everything else by exact match after trimming whitespace.
/// </summary>
public static partial class AnswerExtraction
{
    public static bool IsCorrect(string generated, string expected)
    {
        if (Number(expected.Trim()) is { } want) return FinalNumber(generated) == want;
        return generated.Trim() == expected.Trim();
    }

    /// <summary>The N of a GSM8K solution's final "#### N" line (commas removed), or null.</summary>
    public static string? Gsm8kFinal(string solution)
    {
        var m = Gsm8kPattern().Match(solution);
        return m.Success ? m.Groups[1].Value.Replace(",", "") : null;
    }

    /// <summary>The value after "####" if present, else the last number in the text.</summary>
    public static decimal? FinalNumber(string text)
    {
        if (Gsm8kFinal(text) is { } marked && Number(marked) is { } v) return v;
        var all = NumberPattern().Matches(text);
        return all.Count == 0 ? null : Number(all[^1].Value.Replace(",", ""));
    }

    private static decimal? Number(string s) =>
        decimal.TryParse(s, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) ? v : null;

    [GeneratedRegex(@"####\s*(-?[\d,]*\.?\d+)")]
    private static partial Regex Gsm8kPattern();

    [GeneratedRegex(@"-?\d[\d,]*\.?\d*|-?\.\d+")]
    private static partial Regex NumberPattern();
}
