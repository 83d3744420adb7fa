using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>The special-token strings transformers resolves from tokenizer_config.json and special_tokens_map.json.</summary>
internal sealed record SpecialTokenNames(string? Bos, string? Eos, string? Unk, string? Pad, string? Mask);

/// <summary>
/// What transformers takes from tokenizer_config.json (and special_tokens_map.json, whose entries win,
/// as in PreTrainedTokenizerBase.from_pretrained) beyond tokenizer.json itself.
/// </summary>
internal sealed record TokenizerConfig(
    SpecialTokenNames Names,
    string? ChatTemplate,
    bool? AddBosToken,
    bool? AddEosToken,
    string? TokenizerClass,
    IReadOnlyList<AddedToken> AddedTokensDecoder)
{
    public static TokenizerConfig Read(TokenizerFiles files)
    {
        const string path = TokenizerFiles.ConfigJson;
        JsonObject config = files.Config ?? new JsonObject();
        JsonObject map = files.SpecialTokensMap ?? new JsonObject();
        string? Token(string key) =>
            TokenText(map[key], $"{TokenizerFiles.SpecialTokensMapJson}:{key}") ?? TokenText(config[key], $"{path}:{key}");

        var names = new SpecialTokenNames(Token("bos_token"), Token("eos_token"), Token("unk_token"), Token("pad_token"), Token("mask_token"));
        return new TokenizerConfig(
            names,
            // As in transformers, a chat_template.jinja file overrides a template in the config.
            files.ChatTemplateJinja ?? ReadChatTemplate(config["chat_template"]),
            OptBool(config, "add_bos_token"),
            OptBool(config, "add_eos_token"),
            JsonFields.OptString(config, "tokenizer_class", path),
            ReadAddedTokensDecoder(config));
    }

    /// <summary>A special token is written either as its text or as a serialized AddedToken object.</summary>
    private static string? TokenText(JsonNode? node, string path) => node switch
    {
        null => null,
        JsonObject obj => JsonFields.String(obj["content"], $"{path}.content"),
        _ => JsonFields.String(node, path),
    };

    private static bool? OptBool(JsonObject config, string key) =>
        config[key] is null ? null : JsonFields.OptBool(config, key, false, TokenizerFiles.ConfigJson);

    /// <summary>A string, or a list of named templates of which "default" is the one used without a name.</summary>
    private static string? ReadChatTemplate(JsonNode? node)
    {
        const string path = TokenizerFiles.ConfigJson + ":chat_template";
        if (node is null) return null;
        if (node is not JsonArray named) return JsonFields.String(node, path);
        JsonObject? chosen = named.OfType<JsonObject>().FirstOrDefault(t => JsonFields.TryString(t["name"], out string? n) && n == "default")
            ?? named.OfType<JsonObject>().FirstOrDefault();
        return chosen is null ? null : JsonFields.String(chosen["template"], $"{path}.template");
    }

    private static List<AddedToken> ReadAddedTokensDecoder(JsonObject config)
    {
        const string path = TokenizerFiles.ConfigJson + ":added_tokens_decoder";
        var tokens = new List<AddedToken>();
        if (JsonFields.OptObject(config, "added_tokens_decoder", TokenizerFiles.ConfigJson) is not { } decoder) return tokens;
        foreach ((string key, JsonNode? value) in decoder)
        {
            if (!int.TryParse(key, out int id) || id < 0) throw JsonFields.Fail($"{path}.{key}", "keyed by a non-negative id");
            tokens.Add(AddedToken.Parse(JsonFields.Object(value, $"{path}.{key}"), id, $"{path}.{key}"));
        }
        return tokens;
    }
}
