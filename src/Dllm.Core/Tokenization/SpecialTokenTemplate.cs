using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// The ids Encode(addSpecialTokens: true) puts around a single sequence: HF's post-processor
/// (TemplateProcessing, Roberta/Bert, ByteLevel, Sequence) reduced to the ids before and after it.
/// </summary>
internal sealed record SpecialTokenTemplate(int[] Before, int[] After)
{
    private const string Path = "tokenizer.json:post_processor";

    public static readonly SpecialTokenTemplate None = new([], []);

    // transformers' Llama/Gemma fast tokenizers rebuild their post-processor from add_bos_token/add_eos_token
    // (update_post_processor), whatever tokenizer.json says; defaults are BOS on, EOS off.
    private static readonly HashSet<string> RebuiltFromConfig = new(StringComparer.Ordinal)
    {
        "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast",
    };

    public List<int> Apply(List<int> ids)
    {
        if (Before.Length == 0 && After.Length == 0) return ids;
        var result = new List<int>(Before.Length + ids.Count + After.Length);
        result.AddRange(Before);
        result.AddRange(ids);
        result.AddRange(After);
        return result;
    }

    public static SpecialTokenTemplate Build(JsonNode? postProcessor, TokenizerConfig config, Func<string, int?> tokenToId)
    {
        if (config.TokenizerClass is not null && RebuiltFromConfig.Contains(config.TokenizerClass))
        {
            int[] Required(string? token, string role) =>
                token is not null && tokenToId(token) is int id ? [id]
                    : throw new DllmException($"{TokenizerFiles.ConfigJson}: add_{role}_token is set but {role}_token is missing or not in the vocabulary");
            return new SpecialTokenTemplate(
                config.AddBosToken ?? true ? Required(config.Names.Bos, "bos") : [],
                config.AddEosToken ?? false ? Required(config.Names.Eos, "eos") : []);
        }
        return postProcessor is null ? None : FromJson(postProcessor, Path);
    }

    private static SpecialTokenTemplate FromJson(JsonNode node, string path)
    {
        JsonObject obj = JsonFields.Object(node, path);
        string type = JsonFields.Type(obj, path);
        switch (type)
        {
            case "ByteLevel": // only trims offsets
                return None;
            case "TemplateProcessing":
                return FromTemplate(obj, path);
            case "RobertaProcessing" or "BertProcessing":
                return new SpecialTokenTemplate([IdOfPair(obj["cls"], $"{path}.cls")], [IdOfPair(obj["sep"], $"{path}.sep")]);
            case "Sequence":
                // Each processor wraps the output of the previous one.
                var result = None;
                JsonArray steps = JsonFields.Array(obj["processors"], $"{path}.processors");
                for (int i = 0; i < steps.Count; i++)
                {
                    SpecialTokenTemplate step = FromJson(steps[i]!, $"{path}.processors[{i}]");
                    result = new SpecialTokenTemplate([.. step.Before, .. result.Before], [.. result.After, .. step.After]);
                }
                return result;
            default:
                throw JsonFields.Unsupported(path, $"post-processor '{type}'");
        }
    }

    private static SpecialTokenTemplate FromTemplate(JsonObject obj, string path)
    {
        JsonObject specials = JsonFields.Object(obj["special_tokens"] ?? new JsonObject(), $"{path}.special_tokens");
        var before = new List<int>();
        var after = new List<int>();
        bool seenSequence = false;
        JsonArray single = JsonFields.Array(obj["single"], $"{path}.single");
        for (int i = 0; i < single.Count; i++)
        {
            string piecePath = $"{path}.single[{i}]";
            JsonObject piece = JsonFields.Object(single[i], piecePath);
            if (piece["Sequence"] is not null)
            {
                seenSequence = true;
                continue;
            }
            string name = JsonFields.String(JsonFields.Object(piece["SpecialToken"], $"{piecePath}.SpecialToken")["id"], $"{piecePath}.SpecialToken.id");
            JsonObject entry = JsonFields.Object(specials[name], $"{path}.special_tokens[\"{name}\"]");
            JsonArray ids = JsonFields.Array(entry["ids"], $"{path}.special_tokens[\"{name}\"].ids");
            (seenSequence ? after : before).AddRange(ids.Select((id, k) => JsonFields.Int(id, $"{path}.special_tokens[\"{name}\"].ids[{k}]")));
        }
        if (!seenSequence) throw JsonFields.Fail($"{path}.single", "a template containing the sequence $A");
        return new SpecialTokenTemplate(before.ToArray(), after.ToArray());
    }

    private static int IdOfPair(JsonNode? node, string path)
    {
        JsonArray pair = JsonFields.Array(node, path);
        if (pair.Count != 2) throw JsonFields.Fail(path, "[token, id]");
        return JsonFields.Int(pair[1], $"{path}[1]");
    }
}
