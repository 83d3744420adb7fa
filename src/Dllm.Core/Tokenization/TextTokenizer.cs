using System.Globalization;
using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// A Hugging Face fast tokenizer (tokenizer.json plus tokenizer_config.json / special_tokens_map.json)
/// with HF's encode and decode behaviour. Supported: byte-level BPE (GPT-2, Qwen2/3, Llama-3, Ling) and
/// SentencePiece-style byte-fallback BPE (Llama-2, Mistral, llama2.c imports). Immutable and thread-safe.
/// </summary>
/// <remarks>
/// Encode follows HF's pipeline: added tokens are cut out first, each remaining segment is normalised,
/// pre-tokenised and run through the BPE model, then the post-processor adds BOS/EOS. Truncation and
/// padding settings in tokenizer.json are ignored: callers own sequence lengths.
/// </remarks>
public sealed class TextTokenizer
{
    // Stop tokens that chat templates end a turn with; one counts only if the template really uses it.
    private static readonly string[] TurnEndTokens =
        ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>", "<|end|>", "<end_of_turn>", "<|role_end|>", "</s>"];

    // Spellings of the diffusion mask token, used when the config names no mask_token.
    private static readonly string[] MaskTokens = ["<|mask|>", "<|mdm_mask|>", "<mask>", "[MASK]"];

    private readonly TokenizerFiles _files;
    private readonly ITokenModel _model;
    private readonly AddedVocabulary _added;
    private readonly TextNormalizer _normalizer;
    private readonly SpecialTokenTemplate _template;
    private readonly TokenDecoder _decoder;

    private TextTokenizer(TokenizerFiles files, ITokenModel? model)
    {
        _files = files;
        TokenizerConfig config = TokenizerConfig.Read(files);
        List<AddedToken> added = ReadAddedTokens(files.Tokenizer, config.AddedTokensDecoder);
        _normalizer = TextNormalizer.FromJson(files.Tokenizer["normalizer"], "tokenizer.json:normalizer");
        _model = model ?? TokenModels.Create(files.Tokenizer);
        _added = new AddedVocabulary(added, _normalizer);
        _decoder = TokenDecoder.FromJson(files.Tokenizer["decoder"], "tokenizer.json:decoder");
        _template = SpecialTokenTemplate.Build(files.Tokenizer["post_processor"], config, TokenToId);

        VocabSize = Math.Max(_model.Vocabulary.Values.Max(), _added.MaxId) + 1;
        BosId = IdOf(config.Names.Bos);
        EosId = IdOf(config.Names.Eos);
        PadId = IdOf(config.Names.Pad);
        UnkId = IdOf(config.Names.Unk ?? (JsonFields.TryString((files.Tokenizer["model"] as JsonObject)?["unk_token"], out string? unk) ? unk : null));
        MaskId = IdOf(config.Names.Mask) ?? MaskTokens.Select(TokenToId).FirstOrDefault(id => id is int i && IsSpecial(i));
        ChatTemplate = config.ChatTemplate;
        EosIds = StopTokens();
    }

    /// <summary>Reads tokenizer.json (and tokenizer_config.json, special_tokens_map.json, chat_template.jinja when present).</summary>
    /// <exception cref="DllmException">The directory or tokenizer.json is missing, corrupt or of an unsupported kind.</exception>
    public static TextTokenizer Load(string directory)
    {
        TokenizerFiles files = TokenizerFiles.Read(directory);
        try
        {
            return new TextTokenizer(files, null);
        }
        catch (DllmException e)
        {
            throw new DllmException($"tokenizer in '{directory}': {e.Message}", e);
        }
        // Library or JSON errors from a corrupt file that slipped past our own checks: still the user's file.
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or InvalidCastException or KeyNotFoundException or OverflowException)
        {
            throw new DllmException($"tokenizer in '{directory}' is corrupt: {e.Message}", e);
        }
    }

    internal static TextTokenizer FromFiles(TokenizerFiles files) => new(files, null);

    /// <summary>Largest id in the model vocabulary or the added tokens, plus one.</summary>
    public int VocabSize { get; }

    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int? MaskId { get; }
    public int? UnkId { get; }

    /// <summary>The EOS id followed by the other end-of-turn tokens the chat template emits (e.g. &lt;|im_end|&gt;), without duplicates.</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>The raw Jinja chat template, if the tokenizer has one.</summary>
    public string? ChatTemplate { get; }

    /// <summary>
    /// Token ids of <paramref name="text"/>. Added tokens written in the text (e.g. "&lt;|im_end|&gt;") map to their
    /// ids; <paramref name="addSpecialTokens"/> adds what the post-processor (or add_bos_token) adds in HF.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        foreach (TextSegment raw in _added.SplitRaw(text))
        {
            if (raw.TokenId is int rawId)
            {
                ids.Add(rawId);
                continue;
            }
            foreach (TextSegment piece in _added.SplitNormalized(_normalizer.Normalize(raw.Text)))
            {
                if (piece.TokenId is int pieceId) ids.Add(pieceId);
                else _model.Encode(piece.Text, atStart: raw.Offset == 0 && piece.Offset == 0, ids);
            }
        }
        return addSpecialTokens ? _template.Apply(ids) : ids;
    }

    /// <summary>Text of <paramref name="ids"/> through the tokenizer's decoder; unknown ids are dropped, as in HF.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            string? token = _added.DecodeForm(id) ?? _model.IdToToken(id);
            if (token is null) continue;
            if (skipSpecialTokens && (IsSpecial(id) || _added.IsSpecialContent(token))) continue;
            tokens.Add(token);
        }
        return _decoder.Decode(tokens);
    }

    public int? TokenToId(string token) =>
        _added.IdOf(token) ?? (_model.Vocabulary.TryGetValue(token, out int id) ? id : null);

    /// <summary>The token as stored in tokenizer.json (e.g. "Ġthe", "▁the", "&lt;0x0A&gt;"), or null for an unknown id.</summary>
    public string? IdToToken(int id) => _added[id]?.Content ?? _model.IdToToken(id);

    public bool IsSpecial(int id) => _added[id]?.Special == true;

    /// <summary>
    /// A new tokenizer that also has <paramref name="content"/> as a special added token. Its id is the
    /// existing one if the text is already a token, else <see cref="VocabSize"/>. Save keeps it.
    /// </summary>
    public TextTokenizer WithAddedSpecialToken(string content, out int id)
    {
        ArgumentException.ThrowIfNullOrEmpty(content);
        id = TokenToId(content) ?? VocabSize;
        if (_added[id] is { Special: true } existing && existing.Content == content) return this;

        // Flags as HF's add_special_tokens gives them: matched verbatim, not normalised, no stripping.
        var token = new AddedToken(id, content, Normalized: false, Special: true);
        JsonObject tokenizer = _files.Tokenizer.DeepClone().AsObject();
        tokenizer["added_tokens"] = ListWithToken(tokenizer["added_tokens"] as JsonArray, token);
        JsonObject config = _files.Config?.DeepClone().AsObject() ?? MinimalConfig();
        config["added_tokens_decoder"] = DecoderWithToken(config["added_tokens_decoder"] as JsonObject, token);
        // The BPE model does not see added tokens, so it is shared rather than rebuilt.
        return new TextTokenizer(_files with { Tokenizer = tokenizer, Config = config }, _model);
    }

    /// <summary>
    /// A new tokenizer whose tokenizer_config.json (and special_tokens_map.json, whose entries win in
    /// transformers) name these existing tokens as eos_token / pad_token / mask_token; null leaves a role as it is.
    /// </summary>
    public TextTokenizer WithSpecialTokenNames(string? eos = null, string? pad = null, string? mask = null)
    {
        JsonObject config = _files.Config?.DeepClone().AsObject() ?? MinimalConfig();
        JsonObject? map = _files.SpecialTokensMap?.DeepClone().AsObject();
        foreach ((string key, string? token) in new[] { ("eos_token", eos), ("pad_token", pad), ("mask_token", mask) })
        {
            if (token is null) continue;
            if (TokenToId(token) is null) throw new DllmException($"cannot name '{token}' as {key}: the tokenizer has no such token");
            config[key] = token;
            if (map is not null) map[key] = token;
        }
        return new TextTokenizer(_files with { Config = config, SpecialTokensMap = map }, _model);
    }

    /// <summary>
    /// Writes tokenizer.json and tokenizer_config.json (plus special_tokens_map.json / chat_template.jinja if
    /// they were loaded), each atomically, keeping every field as read except the changes made through this API.
    /// </summary>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _files.Write(directory, _files.Config ?? MinimalConfig());
    }

    private int? IdOf(string? token) => token is null ? null : TokenToId(token);

    private List<int> StopTokens()
    {
        var ids = new List<int>();
        if (EosId is int eos) ids.Add(eos);
        if (ChatTemplate is null) return ids;
        foreach (string token in TurnEndTokens)
            if (ChatTemplate.Contains(token, StringComparison.Ordinal) && TokenToId(token) is int id && IsSpecial(id) && !ids.Contains(id))
                ids.Add(id);
        return ids;
    }

    /// <summary>tokenizer.json's added_tokens, plus any that only tokenizer_config.json lists (transformers adds those too).</summary>
    private static List<AddedToken> ReadAddedTokens(JsonObject tokenizer, IReadOnlyList<AddedToken> fromConfig)
    {
        const string path = "tokenizer.json:added_tokens";
        var tokens = new List<AddedToken>();
        var ids = new HashSet<int>();
        JsonArray list = tokenizer["added_tokens"] is null ? [] : JsonFields.Array(tokenizer["added_tokens"], path);
        for (int i = 0; i < list.Count; i++)
        {
            JsonObject obj = JsonFields.Object(list[i], $"{path}[{i}]");
            AddedToken token = AddedToken.Parse(obj, JsonFields.Int(obj["id"], $"{path}[{i}].id"), $"{path}[{i}]");
            if (!ids.Add(token.Id)) throw new DllmException($"{path}[{i}]: id {token.Id} is used twice");
            tokens.Add(token);
        }
        var contents = tokens.Select(t => t.Content).ToHashSet(StringComparer.Ordinal);
        tokens.AddRange(fromConfig.Where(t => !ids.Contains(t.Id) && !contents.Contains(t.Content)));
        return tokens;
    }

    private JsonObject MinimalConfig() =>
        new() { ["added_tokens_decoder"] = DecoderWithToken(null, null) };

    /// <summary>tokenizer.json's list with the token put in id order (replacing an entry with its id or text).</summary>
    private static JsonArray ListWithToken(JsonArray? list, AddedToken token)
    {
        var entries = (list ?? []).Select(n => n!.DeepClone()).OfType<JsonObject>()
            .Where(o => !(o["id"] is JsonValue v && v.TryGetValue(out int i) && i == token.Id)
                        && !(JsonFields.TryString(o["content"], out string? c) && c == token.Content))
            .Append(token.ToJson(withId: true))
            .OrderBy(o => JsonFields.Int(o["id"], "tokenizer.json:added_tokens[].id"));
        return new JsonArray(entries.ToArray<JsonNode?>());
    }

    /// <summary>tokenizer_config.json's added_tokens_decoder ({"id": token}) with the token added, keys in id order.</summary>
    private JsonObject DecoderWithToken(JsonObject? decoder, AddedToken? token)
    {
        var entries = new SortedDictionary<int, JsonNode?>();
        if (decoder is null)
            foreach (AddedToken t in _added.Tokens) entries[t.Id] = t.ToJson(withId: false);
        else
            foreach ((string key, JsonNode? value) in decoder)
                entries[int.Parse(key, CultureInfo.InvariantCulture)] = value?.DeepClone();
        if (token is not null) entries[token.Id] = token.ToJson(withId: false);
        var result = new JsonObject();
        foreach ((int id, JsonNode? value) in entries) result[id.ToString(CultureInfo.InvariantCulture)] = value;
        return result;
    }
}
