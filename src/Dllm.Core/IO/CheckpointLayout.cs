using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using System.Text.RegularExpressions;

namespace Dllm.IO;

/// <summary>
/// The file names and the shard index of a Hugging Face checkpoint folder, as transformers'
/// save_pretrained writes them and from_pretrained looks for them.
/// </summary>
internal static partial class CheckpointLayout
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    public static string ShardName(int number, int count) => $"model-{number:D5}-of-{count:D5}.safetensors";

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardPattern();

    /// <summary>Files of a previous save: the only ones a new save may delete.</summary>
    public static bool IsCheckpointFile(string fileName) =>
        fileName is SingleFile or IndexFile || ShardPattern().IsMatch(fileName);

    /// <summary>
    /// The index as transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n",
    /// so a diff against an HF-saved index shows only real differences.
    /// </summary>
    public static string SerializeIndex(long totalSize, IEnumerable<KeyValuePair<string, string>> weightMap)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var options = new JsonWriterOptions { Indented = true, NewLine = "\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using (var writer = new Utf8JsonWriter(buffer, options))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("metadata");
            writer.WriteNumber("total_size", totalSize);
            writer.WriteEndObject();
            writer.WriteStartObject("weight_map");
            // Python sorts by code point; ordinal order is the same for the names models use.
            foreach (var (name, file) in weightMap.OrderBy(p => p.Key, StringComparer.Ordinal))
                writer.WriteString(name, file);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }

    /// <summary>Reads weight_map (tensor name -> shard file name) from an index file, in file order.</summary>
    public static List<KeyValuePair<string, string>> ReadIndex(string indexPath)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(indexPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DllmException($"cannot read '{indexPath}': {e.Message}", e);
        }

        if (!Utf8.IsValid(bytes))
            throw BadIndex(indexPath, "it is not valid UTF-8");
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw BadIndex(indexPath, "it has no \"weight_map\" object");
            var result = new List<KeyValuePair<string, string>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in map.EnumerateObject())
            {
                if (!seen.Add(item.Name))
                    throw BadIndex(indexPath, $"tensor '{item.Name}' appears twice in weight_map");
                var file = item.Value.ValueKind == JsonValueKind.String ? item.Value.GetString()! : "";
                // Shards live beside the index; anything else (paths, "..") is refused rather than followed.
                if (file.Length == 0 || Path.GetFileName(file) != file || file is "." or "..")
                    throw BadIndex(indexPath, $"weight_map entry of '{item.Name}' is {item.Value.GetRawText()}, not a file name in the same folder");
                result.Add(new(item.Name, file));
            }
            if (result.Count == 0)
                throw BadIndex(indexPath, "its weight_map is empty");
            return result;
        }
        catch (JsonException e)
        {
            throw BadIndex(indexPath, $"it is not valid JSON ({e.Message})");
        }
    }

    private static DllmException BadIndex(string path, string what) => new($"'{path}' is not a valid checkpoint index: {what}");
}
