using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// The "model" section of a BPE tokenizer.json, read and validated once for both families.
/// Options whose effect we do not implement are rejected here rather than silently ignored.
/// </summary>
internal sealed record BpeModelJson(
    Dictionary<string, int> Vocab,
    string[] IdToToken,
    List<(string Left, string Right)> Merges,
    string? UnkToken,
    bool ByteFallback,
    bool IgnoreMerges)
{
    public const string Path = "tokenizer.json:model";

    public static BpeModelJson Parse(JsonObject tokenizer)
    {
        if (tokenizer["model"] is null) throw new DllmException("tokenizer.json has no 'model' section");
        JsonObject model = JsonFields.Object(tokenizer["model"], Path);
        // HF omits "type" in some old files; the presence of merges then identifies BPE.
        string type = model["type"] is null && model["merges"] is not null ? "BPE" : JsonFields.Type(model, Path);
        if (type != "BPE") throw JsonFields.Unsupported($"{Path}.type", $"model type '{type}'");

        double? dropout = JsonFields.OptNumber(model, "dropout", Path);
        if (dropout is > 0) throw JsonFields.Unsupported($"{Path}.dropout", "BPE dropout");
        foreach (string key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(JsonFields.OptString(model, key, Path)))
                throw JsonFields.Unsupported($"{Path}.{key}", "a non-empty " + key);

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach ((string token, JsonNode? idNode) in JsonFields.Object(model["vocab"], $"{Path}.vocab"))
            vocab[token] = JsonFields.Int(idNode, $"{Path}.vocab[\"{token}\"]");
        if (vocab.Count == 0) throw new DllmException($"{Path}.vocab is empty");
        int maxId = vocab.Values.Max();
        if (vocab.Values.Min() < 0 || maxId > 50_000_000) throw new DllmException($"{Path}.vocab has ids outside 0..50,000,000");
        var idToToken = new string[maxId + 1];
        foreach ((string token, int id) in vocab)
        {
            if (idToToken[id] is not null) throw new DllmException($"{Path}.vocab gives id {id} to both '{idToToken[id]}' and '{token}'");
            idToToken[id] = token;
        }

        List<(string, string)> merges = ParseMerges(model["merges"]);
        // Without merges BPE can only emit single symbols: multi-symbol vocabulary entries then mean a
        // truncated file, which would tokenize into garbage rather than fail.
        if (merges.Count == 0 && idToToken.FirstOrDefault(NeedsMerges) is { } composite)
            throw new DllmException($"{Path}.merges is empty, but the vocabulary holds multi-symbol tokens such as '{composite}' that only merges can produce (is the file truncated?)");

        return new BpeModelJson(
            vocab,
            idToToken,
            merges,
            JsonFields.OptString(model, "unk_token", Path),
            JsonFields.OptBool(model, "byte_fallback", false, Path),
            JsonFields.OptBool(model, "ignore_merges", false, Path));
    }

    /// <summary>More than one symbol, and not a special or byte token written in angle brackets ("&lt;s&gt;", "&lt;0x0A&gt;", "&lt;|endoftext|&gt;").</summary>
    private static bool NeedsMerges(string? token) =>
        token is not null && new System.Globalization.StringInfo(token).LengthInTextElements > 1 && !(token.StartsWith('<') && token.EndsWith('>'));

    /// <summary>Merges come as legacy "a b" strings or as ["a", "b"] pairs (tokenizers ≥ 0.20).</summary>
    private static List<(string, string)> ParseMerges(JsonNode? node)
    {
        var merges = new List<(string, string)>();
        if (node is null) return merges;
        JsonArray array = JsonFields.Array(node, $"{Path}.merges");
        for (int i = 0; i < array.Count; i++)
        {
            string path = $"{Path}.merges[{i}]";
            if (array[i] is JsonArray pair)
            {
                if (pair.Count != 2) throw JsonFields.Fail(path, "a pair of two strings");
                merges.Add((JsonFields.String(pair[0], path + "[0]"), JsonFields.String(pair[1], path + "[1]")));
                continue;
            }
            string line = JsonFields.String(array[i], path);
            string[] parts = line.Split(' ');
            if (parts.Length != 2) throw JsonFields.Fail(path, "\"left right\" with exactly one space");
            merges.Add((parts[0], parts[1]));
        }
        return merges;
    }
}
