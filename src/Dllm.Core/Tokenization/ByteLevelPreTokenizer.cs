using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// The pre-tokenizer shapes of byte-level BPE tokenizers: a lone ByteLevel (GPT-2: its own regex), or
/// Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)] (Qwen2/3, Llama-3, Ling).
/// add_prefix_space prepends " " to each piece that ByteLevel sees, unless it already starts with one.
/// </summary>
internal sealed record ByteLevelPreTokenizer(PreTokenRegex? Pattern, bool PrefixSegment, bool PrefixPieces)
{
    private const string Path = "tokenizer.json:pre_tokenizer";

    public static bool IsByteLevel(JsonNode? node) =>
        node is JsonObject obj && JsonFields.TryString(obj["type"], out string? type) &&
        (type == "ByteLevel" || type == "Sequence" && obj["pretokenizers"] is JsonArray steps && steps.Any(IsByteLevel));

    public static ByteLevelPreTokenizer Parse(JsonNode? node)
    {
        JsonObject obj = JsonFields.Object(node, Path);
        if (JsonFields.Type(obj, Path) == "ByteLevel") return FromByteLevel(obj, Path);

        JsonArray steps = JsonFields.Array(obj["pretokenizers"], $"{Path}.pretokenizers");
        string[] types = steps.Select((s, i) => JsonFields.Type(JsonFields.Object(s, $"{Path}.pretokenizers[{i}]"), $"{Path}.pretokenizers[{i}]")).ToArray();
        if (types is ["ByteLevel"]) return FromByteLevel((JsonObject)steps[0]!, $"{Path}.pretokenizers[0]");
        if (types is not ["Split", "ByteLevel"])
            throw JsonFields.Unsupported(Path, $"pre-tokenizer sequence [{string.Join(", ", types)}]");

        var split = (JsonObject)steps[0]!;
        var byteLevel = (JsonObject)steps[1]!;
        string splitPath = $"{Path}.pretokenizers[0]", bytePath = $"{Path}.pretokenizers[1]";
        string behavior = JsonFields.String(split["behavior"], $"{splitPath}.behavior");
        if (behavior != "Isolated" || JsonFields.OptBool(split, "invert", false, splitPath))
            throw JsonFields.Unsupported(splitPath, $"Split with behavior '{behavior}' (only Isolated, not inverted)");
        if (JsonFields.OptBool(byteLevel, "use_regex", true, bytePath))
            throw JsonFields.Unsupported(bytePath, "ByteLevel with use_regex after a Split");
        var regex = new PreTokenRegex(PatternText(split["pattern"], $"{splitPath}.pattern"), splitPath);
        return new ByteLevelPreTokenizer(regex, PrefixSegment: false,
            PrefixPieces: JsonFields.OptBool(byteLevel, "add_prefix_space", true, bytePath));
    }

    private static ByteLevelPreTokenizer FromByteLevel(JsonObject obj, string path) =>
        new(JsonFields.OptBool(obj, "use_regex", true, path) ? new PreTokenRegex(PreTokenRegex.Gpt2Pattern, path) : null,
            PrefixSegment: JsonFields.OptBool(obj, "add_prefix_space", true, path),
            PrefixPieces: false);

    private static string PatternText(JsonNode? node, string path)
    {
        JsonObject obj = JsonFields.Object(node, path);
        if (obj["Regex"] is not null) return JsonFields.String(obj["Regex"], $"{path}.Regex");
        return System.Text.RegularExpressions.Regex.Escape(JsonFields.String(obj["String"], $"{path}.String"));
    }
}
