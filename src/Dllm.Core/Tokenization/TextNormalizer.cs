using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Dllm.Tokenization;

/// <summary>
/// Hugging Face normalizers that the supported tokenizer families use: Sequence, Prepend and Replace
/// (SentencePiece-style "▁" handling) and the Unicode forms (Qwen uses NFC).
/// </summary>
internal abstract class TextNormalizer
{
    public static readonly TextNormalizer Identity = new SequenceNormalizer([]);

    public abstract string Normalize(string text);

    public static TextNormalizer FromJson(JsonNode? node, string path)
    {
        if (node is null) return Identity;
        JsonObject obj = JsonFields.Object(node, path);
        string type = JsonFields.Type(obj, path);
        return type switch
        {
            "Sequence" => new SequenceNormalizer(JsonFields.Array(obj["normalizers"], $"{path}.normalizers")
                .Select((n, i) => FromJson(n, $"{path}.normalizers[{i}]")).ToArray()),
            // HF prepends only to non-empty text, so an empty input stays empty.
            "Prepend" => new PrependNormalizer(JsonFields.String(obj["prepend"], $"{path}.prepend")),
            "Replace" => new ReplaceNormalizer(TextPattern.FromJson(obj["pattern"], $"{path}.pattern"),
                JsonFields.String(obj["content"], $"{path}.content")),
            "NFC" => new UnicodeFormNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeFormNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeFormNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeFormNormalizer(NormalizationForm.FormKD),
            _ => throw JsonFields.Unsupported(path, $"normalizer '{type}'"),
        };
    }

    private sealed class SequenceNormalizer(TextNormalizer[] steps) : TextNormalizer
    {
        public override string Normalize(string text)
        {
            foreach (TextNormalizer step in steps) text = step.Normalize(text);
            return text;
        }
    }

    private sealed class PrependNormalizer(string prefix) : TextNormalizer
    {
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    private sealed class ReplaceNormalizer(TextPattern pattern, string content) : TextNormalizer
    {
        public override string Normalize(string text) => pattern.Replace(text, content);
    }

    private sealed class UnicodeFormNormalizer(NormalizationForm form) : TextNormalizer
    {
        public override string Normalize(string text) => UnicodeNormalization.Normalize(text, form);
    }
}

/// <summary>HF's pattern object: {"String": literal} or {"Regex": pattern}.</summary>
internal sealed class TextPattern
{
    private readonly string? _literal;
    private readonly Regex? _regex;

    private TextPattern(string? literal, Regex? regex) => (_literal, _regex) = (literal, regex);

    public static TextPattern FromJson(JsonNode? node, string path)
    {
        JsonObject obj = JsonFields.Object(node, path);
        if (obj["String"] is not null) return new TextPattern(JsonFields.String(obj["String"], $"{path}.String"), null);
        if (obj["Regex"] is not null) return new TextPattern(null, HfRegex.Create(JsonFields.String(obj["Regex"], $"{path}.Regex"), path));
        throw JsonFields.Fail(path, "{\"String\": ...} or {\"Regex\": ...}");
    }

    public string Replace(string text, string content) =>
        _literal is not null
            ? (_literal.Length == 0 ? text : text.Replace(_literal, content, StringComparison.Ordinal))
            : _regex!.Replace(text, _ => content); // the evaluator keeps "$1" in content literal, as HF does
}

/// <summary>Builds .NET regexes from the Oniguruma-style patterns in tokenizer.json.</summary>
internal static class HfRegex
{
    public static Regex Create(string pattern, string path)
    {
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
        }
        catch (ArgumentException e)
        {
            throw new DllmException($"{path}: regex '{pattern}' is not valid in .NET: {e.Message}", e);
        }
    }
}

/// <summary>
/// Unicode normalisation (NFC etc.) through .NET's ICU-backed string.Normalize. Under
/// InvariantGlobalization that call silently returns its input, which would tokenise differently
/// from HF, so that case fails loudly instead.
/// </summary>
internal static class UnicodeNormalization
{
    private static readonly Lazy<bool> RuntimeNormalizes = new(() => "e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9");

    public static string Normalize(string text, NormalizationForm form)
    {
        if (Ascii.IsValid(text)) return text; // ASCII is invariant under all four forms
        if (RuntimeNormalizes.Value) return text.Normalize(form);
        throw new DllmException($"this tokenizer needs Unicode {form} normalisation, but the process runs with InvariantGlobalization (no ICU); install libicu and unset DOTNET_SYSTEM_GLOBALIZATION_INVARIANT");
    }
}
