using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace Dllm.Tokenization;

/// <summary>
/// SentencePiece-style BPE (Llama-2, Mistral, llama2.c imports): pieces with "▁" for spaces and
/// "&lt;0xHH&gt;" byte-fallback tokens. The library's BpeTokenizer has no byte fallback, so we hand the
/// vocabulary to its SentencePieceTokenizer as a synthesized ModelProto.
/// </summary>
/// <remarks>How ranked merges become SentencePiece scores, and when that is exact: <see cref="SentencePieceVocabulary"/>.</remarks>
internal sealed class SentencePieceBpeModel : ITokenModel
{
    private readonly SentencePieceTokenizer _sp;
    private readonly BpeModelJson _model;
    private readonly Metaspace? _metaspace;

    /// <summary>The Metaspace pre-tokenizer: spaces to "▁", a "▁" prefix, optional split before each "▁".</summary>
    private sealed record Metaspace(char Replacement, string PrependScheme, bool Split);

    private SentencePieceBpeModel(SentencePieceTokenizer sp, BpeModelJson model, Metaspace? metaspace) =>
        (_sp, _model, _metaspace) = (sp, model, metaspace);

    public IReadOnlyDictionary<string, int> Vocabulary => _model.Vocab;

    public string? IdToToken(int id) => (uint)id < (uint)_model.IdToToken.Length ? _model.IdToToken[id] : null;

    public static SentencePieceBpeModel Create(
        BpeModelJson model, JsonNode? preTokenizer, bool prependsSpace, IReadOnlyList<AddedToken> added, SpecialTokenNames names)
    {
        const string path = BpeModelJson.Path;
        Metaspace? metaspace = ParseMetaspace(preTokenizer); // first, so an unknown pre-tokenizer is named
        if (!model.ByteFallback)
            throw JsonFields.Unsupported(path, "BPE without a ByteLevel pre-tokenizer and without byte_fallback");
        if (Array.IndexOf(model.IdToToken, null) >= 0)
            throw new DllmException($"{path}.vocab must use every id from 0 to {model.IdToToken.Length - 1}");
        if (model.UnkToken is null || !model.Vocab.TryGetValue(model.UnkToken, out int unkId))
            throw new DllmException($"{path}.unk_token must name a vocab token for byte-fallback BPE");
        int byteBase = CheckByteTokens(model);

        SentencePieceModelProto.Piece[] pieces = SentencePieceVocabulary.Build(model, byteBase, unkId, added.ToDictionary(t => t.Id));
        var spec = new SentencePieceModelProto.Spec(
            (unkId, model.UnkToken), Special(model, names.Bos), Special(model, names.Eos), Special(model, names.Pad),
            ByteFallback: true, AddDummyPrefix: prependsSpace || metaspace is { PrependScheme: not "never" });

        using var proto = new MemoryStream(SentencePieceModelProto.Write(pieces, spec));
        // No BOS/EOS and no special tokens: the post-processor and AddedVocabulary own those.
        SentencePieceTokenizer sp = SentencePieceTokenizer.Create(proto, addBeginningOfSentence: false, addEndOfSentence: false, specialTokens: null);
        return new SentencePieceBpeModel(sp, model, metaspace);
    }

    public void Encode(string text, bool atStart, List<int> ids)
    {
        if (_metaspace is not null && text.Length > 0)
        {
            text = text.Replace(' ', _metaspace.Replacement);
            bool prepend = _metaspace.PrependScheme == "always" || _metaspace.PrependScheme == "first" && atStart;
            if (prepend && text[0] != _metaspace.Replacement) text = _metaspace.Replacement + text;
        }
        if (_metaspace is { Split: true })
        {
            // Split before each replacement char (HF's MergedWithNext), so merges never cross words.
            int start = 0;
            for (int i = 1; i <= text.Length; i++)
            {
                if (i < text.Length && text[i] != _metaspace.Replacement) continue;
                EncodeWord(text[start..i], ids);
                start = i;
            }
            return;
        }
        EncodeWord(text, ids);
    }

    private void EncodeWord(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (_model.IgnoreMerges && _model.Vocab.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }
        // The text is already normalised the HF way, so the library's own normalizer is bypassed.
        ids.AddRange(_sp.EncodeToIds(word, addBeginningOfSentence: false, addEndOfSentence: false,
            considerPreTokenization: false, considerNormalization: false));
    }

    private static (int, string?) Special(BpeModelJson model, string? token) =>
        token is not null && model.Vocab.TryGetValue(token, out int id) ? (id, token) : (-1, null);

    /// <summary>The library maps byte b to id(&lt;0x00&gt;) + b, so all 256 byte tokens must be there, in order.</summary>
    private static int CheckByteTokens(BpeModelJson model)
    {
        if (!model.Vocab.TryGetValue("<0x00>", out int byteBase))
            throw new DllmException($"{BpeModelJson.Path}: byte_fallback is set but the vocab has no <0x00> token");
        for (int b = 0; b < 256; b++)
        {
            string token = $"<0x{b:X2}>";
            if (!model.Vocab.TryGetValue(token, out int id) || id != byteBase + b)
                throw new DllmException($"{BpeModelJson.Path}: byte-fallback tokens must be <0x00>..<0xFF> with consecutive ids; {token} is not at id {byteBase + b}");
        }
        return byteBase;
    }

    private static Metaspace? ParseMetaspace(JsonNode? node)
    {
        const string path = "tokenizer.json:pre_tokenizer";
        if (node is null) return null;
        JsonObject obj = JsonFields.Object(node, path);
        string type = JsonFields.Type(obj, path);
        if (type != "Metaspace") throw JsonFields.Unsupported(path, $"pre-tokenizer '{type}'");
        string replacement = JsonFields.String(obj["replacement"], $"{path}.replacement");
        if (replacement.Length != 1) throw JsonFields.Fail($"{path}.replacement", "one char");
        // Old files carry add_prefix_space instead of prepend_scheme.
        string scheme = JsonFields.OptString(obj, "prepend_scheme", path)
            ?? (JsonFields.OptBool(obj, "add_prefix_space", true, path) ? "always" : "never");
        if (scheme is not ("always" or "first" or "never")) throw JsonFields.Fail($"{path}.prepend_scheme", "always, first or never");
        return new Metaspace(replacement[0], scheme, JsonFields.OptBool(obj, "split", true, path));
    }
}
