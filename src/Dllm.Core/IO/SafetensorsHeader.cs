using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Dllm.IO;

/// <summary>
/// The JSON header of a safetensors file, both ways: parsing with full validation against the
/// size of the data section, and encoding with the 8-byte length prefix and space padding.
/// </summary>
internal sealed record SafetensorsHeader(IReadOnlyList<TensorEntry> Entries, IReadOnlyDictionary<string, string> Metadata)
{
    public const string MetadataKey = "__metadata__";

    /// <summary>Beyond this a header is corrupt, not large: a 1T-parameter model's header is a few MB.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public static DllmException Invalid(string path, string what) =>
        new($"'{path}' is not a valid safetensors file: {what}");

    /// <summary>Parses and validates <paramref name="json"/>; entries come back in data order.</summary>
    public static SafetensorsHeader Parse(string path, ReadOnlyMemory<byte> json, long dataLength)
    {
        // JsonDocument checks UTF-8 only when a string is read, too late to report it as a header fault.
        if (!Utf8.IsValid(json.Span))
            throw Invalid(path, "the header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"the header is not valid JSON ({e.Message})");
        }

        var entries = new List<TensorEntry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"the header is a JSON {doc.RootElement.ValueKind}, not an object");
            // JSON allows repeated keys and parsers disagree on which wins, so refuse them.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Invalid(path, $"key '{property.Name}' appears twice in the header");
                if (property.Name == MetadataKey) ReadMetadata(path, property.Value, metadata);
                else entries.Add(ReadEntry(path, property.Name, property.Value, dataLength));
            }
        }

        // Stable sort: data order makes reads sequential and the overlap check a single pass.
        var ordered = entries.OrderBy(e => e.DataBegin).ThenBy(e => e.DataEnd).ToList();
        CheckNoOverlap(path, ordered);
        return new SafetensorsHeader(ordered, metadata);
    }

    /// <summary>The length prefix plus the compact JSON header, padded with spaces to a multiple of 8.</summary>
    public static byte[] Encode(IEnumerable<TensorEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        var json = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable; the output is still strict JSON.
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (metadata.Count > 0)
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            foreach (var entry in entries)
            {
                writer.WriteStartObject(entry.Name);
                writer.WriteString("dtype", entry.DType.ToString());
                writer.WriteStartArray("shape");
                foreach (var dim in entry.Shape) writer.WriteNumberValue(dim);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(entry.DataBegin);
                writer.WriteNumberValue(entry.DataEnd);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }

        // Padding keeps the data section 8-byte aligned in the file, as the reference writer does.
        var padded = (json.WrittenCount + 7) / 8 * 8;
        var bytes = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        json.WrittenSpan.CopyTo(bytes.AsSpan(8));
        bytes.AsSpan(8 + json.WrittenCount).Fill((byte)' ');
        return bytes;
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"{MetadataKey} is a JSON {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Invalid(path, $"{MetadataKey} value of '{item.Name}' is a JSON {item.Value.ValueKind}, not a string");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static TensorEntry ReadEntry(string path, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"tensor '{name}' is a JSON {value.ValueKind}, not an object with dtype, shape and data_offsets");

        if (!value.TryGetProperty("dtype", out var dtypeJson))
            throw Invalid(path, $"tensor '{name}' has no dtype");
        if (dtypeJson.ValueKind != JsonValueKind.String || !SafetensorsDTypes.TryParse(dtypeJson.GetString()!, out var dtype))
            throw Invalid(path, $"tensor '{name}' has unknown dtype {dtypeJson.GetRawText()} (supported: {SafetensorsDTypes.Supported})");

        if (!value.TryGetProperty("shape", out var shapeJson))
            throw Invalid(path, $"tensor '{name}' has no shape");
        if (shapeJson.ValueKind != JsonValueKind.Array)
            throw Invalid(path, $"shape of tensor '{name}' is a JSON {shapeJson.ValueKind}, not an array");
        var shape = shapeJson.EnumerateArray().Select(d => ReadCount(path, name, "shape", d)).ToArray();

        if (!value.TryGetProperty("data_offsets", out var offsetsJson))
            throw Invalid(path, $"tensor '{name}' has no data_offsets");
        if (offsetsJson.ValueKind != JsonValueKind.Array || offsetsJson.GetArrayLength() != 2)
            throw Invalid(path, $"data_offsets of tensor '{name}' is {offsetsJson.GetRawText()}, not [begin, end]");
        var begin = ReadCount(path, name, "data_offsets", offsetsJson[0]);
        var end = ReadCount(path, name, "data_offsets", offsetsJson[1]);
        if (begin > end)
            throw Invalid(path, $"data_offsets [{begin}, {end}] of tensor '{name}' begin after they end");
        if (end > dataLength)
            throw Invalid(path, $"tensor '{name}' ends at byte {end} of the data section, which holds only {dataLength} bytes (is the file truncated?)");

        var expected = ExpectedBytes(shape, dtype);
        if (expected != end - begin)
            throw Invalid(path, $"tensor '{name}' has {end - begin} bytes but {dtype} shape [{string.Join(", ", shape)}] needs {(expected < 0 ? "more than 2^63" : expected)}");

        return new TensorEntry(name, dtype, shape, begin, end);
    }

    private static long ReadCount(string path, string name, string field, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n))
            throw Invalid(path, $"{field} of tensor '{name}' holds {value.GetRawText()}, not an integer");
        if (n < 0)
            throw Invalid(path, $"{field} of tensor '{name}' holds the negative value {n}");
        return n;
    }

    /// <summary>product(shape) * element size, or -1 on overflow (which can never match a real byte count).</summary>
    private static long ExpectedBytes(long[] shape, SafetensorsDType dtype)
    {
        if (shape.Contains(0)) return 0; // before multiplying, so [2^62, 4, 0] is empty, not an overflow
        try
        {
            long bytes = dtype.ElementSize();
            foreach (var dim in shape) bytes = checked(bytes * dim);
            return bytes;
        }
        catch (OverflowException)
        {
            return -1;
        }
    }

    private static void CheckNoOverlap(string path, IReadOnlyList<TensorEntry> ordered)
    {
        TensorEntry? previous = null;
        foreach (var entry in ordered)
        {
            if (entry.ByteLength == 0) continue; // an empty range holds no bytes, so it cannot collide
            if (previous is not null && entry.DataBegin < previous.DataEnd)
                throw Invalid(path, $"tensors '{previous.Name}' [{previous.DataBegin}, {previous.DataEnd}) and '{entry.Name}' [{entry.DataBegin}, {entry.DataEnd}) overlap");
            previous = entry;
        }
    }
}
