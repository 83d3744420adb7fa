using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.IO;

/// <summary>
/// JSON parsing for every file and request a user hands us. A key given twice is refused at parse time:
/// parsers disagree on which copy wins (Python's json keeps the last, JsonNode throws an
/// ArgumentException on first access), so guessing could load a different model than the author meant.
/// Errors surface as <see cref="JsonException"/>, which callers already turn into one line naming the file.
/// </summary>
public static class StrictJson
{
    public static readonly JsonDocumentOptions Options = new()
    {
        AllowDuplicateProperties = false,
        MaxDepth = 64,
    };

    public static JsonNode? Parse(string json) => Decodable(JsonNode.Parse(json, documentOptions: Options));

    public static JsonNode? Parse(Stream utf8Json) => Decodable(JsonNode.Parse(utf8Json, documentOptions: Options));

    public static JsonNode? Parse(ReadOnlySpan<byte> utf8Json) => Decodable(JsonNode.Parse(utf8Json, documentOptions: Options));

    /// <summary>
    /// Decodes every key and string once, so an escape that is no text ("\uDE0A", half of a surrogate pair) fails here
    /// as a <see cref="JsonException"/> instead of as an InvalidOperationException wherever a reader first touches it.
    /// </summary>
    private static JsonNode? Decodable(JsonNode? root)
    {
        try
        {
            Visit(root);
            return root;
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException($"a string is not valid text ({e.Message})", e);
        }

        static void Visit(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject o:
                    foreach (var (_, child) in o) Visit(child);
                    break;
                case JsonArray a:
                    foreach (var child in a) Visit(child);
                    break;
                case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                    v.GetValue<string>();
                    break;
            }
        }
    }

    public static JsonDocument Document(string json) => JsonDocument.Parse(json, Options);

    public static JsonDocument Document(ReadOnlyMemory<byte> utf8Json) => JsonDocument.Parse(utf8Json, Options);

    public static Task<JsonDocument> DocumentAsync(Stream utf8Json, CancellationToken cancel) => JsonDocument.ParseAsync(utf8Json, Options, cancel);

    /// <summary>Parses <paramref name="json"/> as an object, or throws a <see cref="DllmException"/> that starts with <paramref name="source"/>.</summary>
    public static JsonObject ParseObject(string json, string source)
    {
        try
        {
            return Parse(json) as JsonObject ?? throw new DllmException($"{source}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new DllmException($"{source}: invalid JSON ({e.Message})", e);
        }
    }
}
