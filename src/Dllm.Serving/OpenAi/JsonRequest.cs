using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;

namespace Dllm.Serving.OpenAi;

/// <summary>
/// A request body as a JSON object, read field by field so that every wrong type becomes a 400 naming
/// the field (model binding would answer with its own error shape). A field set to null counts as absent.
/// </summary>
internal sealed class JsonRequest
{
    private readonly JsonElement _root;

    private JsonRequest(JsonElement root) => _root = root;

    public static async Task<JsonRequest> ReadAsync(HttpRequest request, CancellationToken cancel)
    {
        // The whole body is read first (JsonDocument buffers it anyway): its UTF-8 is checked up front because
        // JsonDocument only notices bad bytes inside a string when the string is read, as an exception that is no 400.
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, cancel);
        return Parse(new ReadOnlyMemory<byte>(body.GetBuffer(), 0, (int)body.Length));
    }

    public static JsonRequest Parse(string json) => new(Dllm.IO.StrictJson.Document(json).RootElement.Clone());

    /// <summary>The body check without HTTP, for fuzzing and tests: the same errors <see cref="ReadAsync"/> raises.</summary>
    public static JsonRequest Parse(ReadOnlyMemory<byte> body)
    {
        if (!Utf8.IsValid(body.Span))
            throw new RequestError("the request body is not valid UTF-8 (JSON must be UTF-8 encoded)", code: "invalid_json");
        try
        {
            using var document = Dllm.IO.StrictJson.Document(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new RequestError($"the request body must be a JSON object, got {Kind(document.RootElement)}", code: "invalid_json");
            return new JsonRequest(document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new RequestError($"the request body is not valid JSON: {e.Message}", code: "invalid_json");
        }
    }

    public bool Has(string name) => Field(name) is not null;

    public JsonElement? Field(string name) =>
        _root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string? String(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        { } v => throw TypeError(name, "a string", v),
    };

    public bool? Bool(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw TypeError(name, "a boolean", v),
    };

    public double? Number(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v => v.GetDouble(),
        { } v => throw TypeError(name, "a number", v),
    };

    public long? Long(string name) => Integer(name, long.MinValue, long.MaxValue);

    /// <summary>An integer; values beyond int's range are clamped (a huge limit means "as many as fit").</summary>
    public int? Int(string name) => (int?)Integer(name, int.MinValue, int.MaxValue);

    /// <summary>A string or an array of strings (OpenAI's "stop" field).</summary>
    public IReadOnlyList<string> Strings(string name)
    {
        switch (Field(name))
        {
            case null: return [];
            case { ValueKind: JsonValueKind.String } v: return [v.GetString()!];
            case { ValueKind: JsonValueKind.Array } a:
                var list = new List<string>();
                foreach (var item in a.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String) throw TypeError(name, "a string or an array of strings", item);
                    list.Add(item.GetString()!);
                }
                return list;
            case { } v: throw TypeError(name, "a string or an array of strings", v);
        }
    }

    private long? Integer(string name, long min, long max)
    {
        if (Field(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw TypeError(name, "an integer", v);
        if (v.TryGetInt64(out var l)) return Math.Clamp(l, min, max);
        var d = v.GetDouble();
        if (double.IsFinite(d) && Math.Floor(d) == d) return d >= max ? max : d <= min ? min : (long)d;
        throw new RequestError($"{name} must be an integer, got {v.GetRawText()}", name);
    }

    public static RequestError TypeError(string name, string expected, JsonElement got) =>
        new($"{name} must be {expected}, got {Kind(got)}", name);

    public static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
