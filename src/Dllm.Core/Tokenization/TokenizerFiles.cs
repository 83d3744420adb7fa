using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// The raw JSON documents of a Hugging Face tokenizer directory. They are kept whole, so Save writes back
/// every field we do not understand or did not change.
/// </summary>
internal sealed record TokenizerFiles(
    JsonObject Tokenizer,
    JsonObject? Config,
    JsonObject? SpecialTokensMap,
    string? ChatTemplateJinja)
{
    public const string TokenizerJson = "tokenizer.json";
    public const string ConfigJson = "tokenizer_config.json";
    public const string SpecialTokensMapJson = "special_tokens_map.json";
    // Newer transformers versions store the chat template beside the config instead of inside it.
    public const string ChatTemplateFile = "chat_template.jinja";

    // HF writes these files with ensure_ascii=False and indent=2; keeping "▁" and "Ġ" literal keeps diffs readable.
    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static TokenizerFiles Read(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DllmException($"tokenizer directory '{directory}' does not exist");
        string tokenizerPath = Path.Combine(directory, TokenizerJson);
        if (!File.Exists(tokenizerPath))
            throw new DllmException($"no {TokenizerJson} in '{directory}' (only Hugging Face fast-tokenizer files are supported)");

        JsonObject tokenizer = JsonFields.Object(ParseFile(tokenizerPath), TokenizerJson);
        JsonObject? config = ReadOptionalObject(Path.Combine(directory, ConfigJson));
        JsonObject? map = ReadOptionalObject(Path.Combine(directory, SpecialTokensMapJson));
        string templatePath = Path.Combine(directory, ChatTemplateFile);
        string? jinja = File.Exists(templatePath) ? File.ReadAllText(templatePath, Encoding.UTF8) : null;
        return new TokenizerFiles(tokenizer, config, map, jinja);
    }

    /// <summary>Writes every document that exists; each file is replaced atomically.</summary>
    public void Write(string directory, JsonObject config)
    {
        Directory.CreateDirectory(directory);
        WriteAtomically(Path.Combine(directory, TokenizerJson), Serialize(Tokenizer));
        WriteAtomically(Path.Combine(directory, ConfigJson), Serialize(config));
        if (SpecialTokensMap is not null)
            WriteAtomically(Path.Combine(directory, SpecialTokensMapJson), Serialize(SpecialTokensMap));
        if (ChatTemplateJinja is not null)
            WriteAtomically(Path.Combine(directory, ChatTemplateFile), ChatTemplateJinja);
    }

    private static JsonObject? ReadOptionalObject(string path) =>
        File.Exists(path) ? JsonFields.Object(ParseFile(path), Path.GetFileName(path)) : null;

    private static JsonNode? ParseFile(string path)
    {
        try
        {
            using FileStream stream = File.OpenRead(path);
            return IO.StrictJson.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new DllmException($"{path} is not valid JSON: {e.Message}", e);
        }
    }

    private static string Serialize(JsonObject obj) => obj.ToJsonString(WriteOptions) + "\n";

    /// <summary>
    /// Writes to a temporary file in the same directory and renames it over the target, so a reader never
    /// sees a half-written tokenizer and a crash leaves the old file intact.
    /// </summary>
    private static void WriteAtomically(string path, string content)
    {
        string temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                byte[] bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(content);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
