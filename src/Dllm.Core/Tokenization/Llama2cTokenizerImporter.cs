using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// Converts a llama2.c tokenizer.bin (e.g. tok512.bin) into a Hugging Face Llama tokenizer, as
/// transformers' LlamaConverter would from the matching SentencePiece model: "▁" for spaces, byte-fallback
/// BPE with every two-piece split of a piece as a merge ranked by the piece's score, the
/// Prepend/Replace normalizer, BOS added, and the Replace/ByteFallback/Fuse/Strip decoder.
/// The result encodes exactly like llama2.c's encode(): BOS, dummy " " prefix, highest-score merges first.
/// </summary>
public static class Llama2cTokenizerImporter
{
    private const string Unk = "<unk>", Bos = "<s>", Eos = "</s>";
    private const int FirstByteId = 3; // llama2.c encodes byte b as id b + 3

    /// <summary>Reads the .bin and builds the tokenizer; call Save on it to write tokenizer.json and tokenizer_config.json.</summary>
    /// <exception cref="DllmException">The file is missing, corrupt, or not laid out like llama2.c's Llama vocabularies.</exception>
    public static TextTokenizer Import(string tokenizerBinPath)
    {
        Llama2cTokenizerBin bin = Llama2cTokenizerBin.Read(tokenizerBinPath);
        string[] pieces = HfPieces(bin.Pieces, tokenizerBinPath);
        JsonObject tokenizer = TokenizerJson(pieces, Merges(pieces, bin.Scores));
        return TextTokenizer.FromFiles(new TokenizerFiles(tokenizer, ConfigJson(), SpecialTokensMap: null, ChatTemplateJinja: null));
    }

    /// <summary>llama2.c's export wrote "▁" as " " and wrapped BOS/EOS in newlines; undo both.</summary>
    private static string[] HfPieces(string[] raw, string path)
    {
        if (raw.Length < FirstByteId + 256) throw Layout(path, $"it has {raw.Length} tokens, fewer than the 259 special and byte tokens");
        string[] expected = [Unk, "\n<s>\n", "\n</s>\n"];
        for (int i = 0; i < FirstByteId; i++)
            if (raw[i] != expected[i]) throw Layout(path, $"token {i} is '{raw[i]}', expected '{expected[i]}'");
        for (int b = 0; b < 256; b++)
            if (raw[FirstByteId + b] != $"<0x{b:X2}>") throw Layout(path, $"token {FirstByteId + b} is '{raw[FirstByteId + b]}', expected <0x{b:X2}>");

        var pieces = new string[raw.Length];
        pieces[0] = Unk;
        pieces[1] = Bos;
        pieces[2] = Eos;
        var seen = new HashSet<string>(StringComparer.Ordinal) { Unk, Bos, Eos };
        for (int id = FirstByteId; id < raw.Length; id++)
        {
            pieces[id] = id < FirstByteId + 256 ? raw[id] : raw[id].Replace(' ', '\u2581');
            if (!seen.Add(pieces[id])) throw Layout(path, $"token {id} ('{pieces[id]}') appears twice");
        }
        return pieces;
    }

    /// <summary>
    /// HF's SentencePieceExtractor: every split of a piece into two pieces is a merge; merges are ordered by
    /// the merged piece's score (descending), then by piece id and the ids of the two halves.
    /// </summary>
    private static List<(string Left, string Right)> Merges(string[] pieces, float[] scores)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < pieces.Length; id++) ids[pieces[id]] = id;
        var merges = new List<(float Score, int Id, int LeftId, int RightId)>();
        for (int id = 0; id < pieces.Length; id++)
        {
            string piece = pieces[id];
            for (int i = 1; i < piece.Length; i++)
            {
                if (char.IsLowSurrogate(piece[i])) continue; // never split a code point
                if (ids.TryGetValue(piece[..i], out int left) && ids.TryGetValue(piece[i..], out int right))
                    merges.Add((scores[id], id, left, right));
            }
        }
        return merges
            .OrderByDescending(m => m.Score).ThenBy(m => m.Id).ThenBy(m => m.LeftId).ThenBy(m => m.RightId)
            .Select(m => (pieces[m.LeftId], pieces[m.RightId]))
            .ToList();
    }

    private static JsonObject TokenizerJson(string[] pieces, List<(string Left, string Right)> merges)
    {
        var vocab = new JsonObject();
        for (int id = 0; id < pieces.Length; id++) vocab[pieces[id]] = id;
        var mergeArray = new JsonArray(merges.Select(m => (JsonNode?)new JsonArray(m.Left, m.Right)).ToArray());
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(SpecialTokens().Select(t => (JsonNode?)t.ToJson(withId: true)).ToArray()),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "\u2581" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "\u2581" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(SpecialPiece(Bos, 0), SequencePiece("A", 0)),
                ["pair"] = new JsonArray(SpecialPiece(Bos, 0), SequencePiece("A", 0), SpecialPiece(Bos, 1), SequencePiece("B", 1)),
                ["special_tokens"] = new JsonObject
                {
                    [Bos] = new JsonObject { ["id"] = Bos, ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray(Bos) },
                },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "\u2581" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = Unk,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true,
                ["byte_fallback"] = true,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = mergeArray,
            },
        };
    }

    private static JsonObject ConfigJson() => new()
    {
        ["add_bos_token"] = true,
        ["add_eos_token"] = false,
        ["added_tokens_decoder"] = new JsonObject(SpecialTokens()
            .Select(t => KeyValuePair.Create(t.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)t.ToJson(withId: false)))),
        ["bos_token"] = Bos,
        ["clean_up_tokenization_spaces"] = false,
        ["eos_token"] = Eos,
        ["legacy"] = true,
        ["pad_token"] = null,
        ["tokenizer_class"] = "LlamaTokenizer",
        ["unk_token"] = Unk,
    };

    private static IEnumerable<AddedToken> SpecialTokens() =>
        [new AddedToken(0, Unk), new AddedToken(1, Bos), new AddedToken(2, Eos)];

    private static JsonObject SpecialPiece(string id, int typeId) =>
        new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };

    private static JsonObject SequencePiece(string id, int typeId) =>
        new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };

    private static DllmException Layout(string path, string why) =>
        new($"'{path}' does not have llama2.c's Llama vocabulary layout: {why}");
}
