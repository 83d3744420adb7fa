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

    public static JsonNode? Parse(string json) => JsonNode.Parse(json, documentOptions: Options);

    public static JsonNode? Parse(Stream utf8Json) => JsonNode.Parse(utf8Json, documentOptions: Options);

    public static JsonNode? Parse(ReadOnlySpan<byte> utf8Json) => JsonNode.Parse(utf8Json, documentOptions: Options);

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
