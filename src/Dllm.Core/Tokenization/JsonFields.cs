using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// Typed reads from the JSON of tokenizer files. Every shape error becomes a <see cref="DllmException"/>
/// that names the file and the JSON path, so a broken tokenizer.json is diagnosable from one line.
/// </summary>
internal static class JsonFields
{
    public static JsonObject Object(JsonNode? node, string path) =>
        node as JsonObject ?? throw Fail(path, "an object");

    public static JsonObject? OptObject(JsonObject parent, string key, string path) =>
        parent[key] switch
        {
            null => null,
            JsonObject o => o,
            _ => throw Fail($"{path}.{key}", "an object or null"),
        };

    public static JsonArray Array(JsonNode? node, string path) =>
        node as JsonArray ?? throw Fail(path, "an array");

    public static string String(JsonNode? node, string path) =>
        TryString(node, out string? s) ? s! : throw Fail(path, "a string");

    public static string? OptString(JsonObject parent, string key, string path) =>
        parent[key] is null ? null : String(parent[key], $"{path}.{key}");

    public static bool OptBool(JsonObject parent, string key, bool fallback, string path) =>
        parent[key] switch
        {
            null => fallback,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            _ => throw Fail($"{path}.{key}", "true or false"),
        };

    public static int Int(JsonNode? node, string path)
    {
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out int i)) return i;
        if (node is JsonValue e && e.TryGetValue(out JsonElement el) && el.ValueKind == JsonValueKind.Number && el.TryGetInt32(out int j)) return j;
        throw Fail(path, "a 32-bit integer");
    }

    public static double? OptNumber(JsonObject parent, string key, string path) =>
        parent[key] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
            _ => throw Fail($"{path}.{key}", "a number or null"),
        };

    /// <summary>The "type" discriminator HF uses on normalizers, pre-tokenizers, decoders and models.</summary>
    public static string Type(JsonObject obj, string path) => String(obj["type"], $"{path}.type");

    public static bool TryString(JsonNode? node, out string? value)
    {
        value = null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            value = v.GetValue<string>();
            return true;
        }
        return false;
    }

    public static DllmException Fail(string path, string expected) =>
        new($"{path} must be {expected}");

    public static DllmException Unsupported(string path, string what) =>
        new($"{path}: {what} is not supported (dllm reads byte-level BPE and SentencePiece-style byte-fallback BPE tokenizers)");
}
