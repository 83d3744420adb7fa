using System.Text;
using System.Text.Json;

namespace Dllm.Data;

/// <summary>
/// Documents of a JSON Lines file: each non-blank line is one JSON object whose string field holds the text.
/// A null or empty field is skipped (no document); a line that is not an object with that field as a string
/// is an error naming the file and the 1-based line number, since it usually means a wrong field or a wrong file.
/// </summary>
internal static class JsonlDocuments
{
    public static IEnumerable<string> Read(string path, string field)
    {
        using var reader = new StreamReader(CorpusReader.Open(path), new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
        long lineNumber = 0;
        while (reader.ReadLine() is string line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (Text(line, field, path, lineNumber) is { Length: > 0 } text) yield return text;
        }
    }

    private static string? Text(string line, string field, string path, long lineNumber)
    {
        JsonDocument json;
        try
        {
            json = IO.StrictJson.Document(line);
        }
        catch (JsonException e)
        {
            throw new DllmException($"corpus file '{path}' line {lineNumber}: not valid JSON ({e.Message}); a JSON Lines file has one JSON object per line", e);
        }
        using (json)
        {
            JsonElement root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new DllmException($"corpus file '{path}' line {lineNumber}: expected a JSON object, found {Describe(root.ValueKind)}");
            if (!root.TryGetProperty(field, out JsonElement value))
            {
                string fields = string.Join(", ", root.EnumerateObject().Select(p => $"'{p.Name}'"));
                throw new DllmException($"corpus file '{path}' line {lineNumber}: no field '{field}' (the object has {(fields.Length == 0 ? "no fields" : fields)})");
            }
            return value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Null => null,
                var kind => throw new DllmException($"corpus file '{path}' line {lineNumber}: field '{field}' is {Describe(kind)}, not a string"),
            };
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
