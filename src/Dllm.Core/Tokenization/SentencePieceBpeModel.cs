using System.Text;
using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// SentencePiece-style BPE (Llama-2, Mistral, llama2.c imports) as HF's tokenizers library runs it:
/// pieces spell spaces "▁"; a word starts as its characters, each character the vocabulary lacks
/// becomes its UTF-8 bytes as "&lt;0xHH&gt;" tokens (byte fallback); then, while any adjacent pair is
/// listed in "merges", the pair with the lowest rank merges (the leftmost of equal ranks).
/// </summary>
internal sealed class SentencePieceBpeModel : ITokenModel
{
    private readonly BpeModelJson _model;
    private readonly Metaspace? _metaspace;
    private readonly Dictionary<(int Left, int Right), Merge> _merges;
    private readonly int[] _byteIds; // the id of <0xHH> for each byte HH

    /// <summary>A listed merge: its rank (lower merges first) and the id of the merged piece.</summary>
    private readonly record struct Merge(int Rank, int Id);

    /// <summary>The Metaspace pre-tokenizer: spaces to "▁", a "▁" prefix, optional split before each "▁".</summary>
    private sealed record Metaspace(char Replacement, string PrependScheme, bool Split);

    private SentencePieceBpeModel(BpeModelJson model, Metaspace? metaspace, Dictionary<(int, int), Merge> merges, int[] byteIds) =>
        (_model, _metaspace, _merges, _byteIds) = (model, metaspace, merges, byteIds);

    public IReadOnlyDictionary<string, int> Vocabulary => _model.Vocab;

    public string? IdToToken(int id) => (uint)id < (uint)_model.IdToToken.Length ? _model.IdToToken[id] : null;

    public static SentencePieceBpeModel Create(BpeModelJson model, JsonNode? preTokenizer)
    {
        Metaspace? metaspace = ParseMetaspace(preTokenizer); // first, so an unknown pre-tokenizer is named
        if (!model.ByteFallback)
            throw JsonFields.Unsupported(BpeModelJson.Path, "BPE without a ByteLevel pre-tokenizer and without byte_fallback");
        return new SentencePieceBpeModel(model, metaspace, RankMerges(model), ByteIds(model));
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
        int[] symbols = Symbols(word);
        int n = symbols.Length;
        // A doubly linked list over the symbols; a merge folds the right symbol into the left one.
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++) (prev[i], next[i]) = (i - 1, i + 1 < n ? i + 1 : -1);
        var alive = new bool[n];
        Array.Fill(alive, true);

        // Candidates by (rank, position): the lowest rank first, the leftmost of equal ranks. A candidate
        // goes stale when either symbol merges with another neighbour; it then no longer names the pair
        // that sits there and is skipped.
        var queue = new PriorityQueue<(int At, int Id), (int Rank, int At)>();
        void Offer(int at)
        {
            if (at >= 0 && next[at] >= 0 && _merges.TryGetValue((symbols[at], symbols[next[at]]), out Merge m))
                queue.Enqueue((at, m.Id), (m.Rank, at));
        }
        for (int i = 0; i + 1 < n; i++) Offer(i);
        while (queue.TryDequeue(out (int At, int Id) top, out _))
        {
            int at = top.At, right = next[at];
            if (!alive[at] || right < 0
                || !_merges.TryGetValue((symbols[at], symbols[right]), out Merge m) || m.Id != top.Id)
                continue;
            symbols[at] = m.Id;
            alive[right] = false;
            next[at] = next[right];
            if (next[at] >= 0) prev[next[at]] = at;
            Offer(prev[at]);
            Offer(at);
        }
        for (int i = 0; i >= 0; i = next[i]) ids.Add(symbols[i]);
    }

    /// <summary>One symbol per character in the vocabulary, else one per UTF-8 byte of it.</summary>
    private int[] Symbols(string word)
    {
        var symbols = new List<int>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in word.EnumerateRunes())
        {
            if (_model.Vocab.TryGetValue(rune.ToString(), out int id))
            {
                symbols.Add(id);
                continue;
            }
            int length = rune.EncodeToUtf8(utf8);
            for (int b = 0; b < length; b++) symbols.Add(_byteIds[utf8[b]]);
        }
        return symbols.ToArray();
    }

    /// <summary>Each listed pair with its rank; as in HF, a pair listed twice keeps its last rank.</summary>
    private static Dictionary<(int, int), Merge> RankMerges(BpeModelJson model)
    {
        var merges = new Dictionary<(int, int), Merge>(model.Merges.Count);
        for (int rank = 0; rank < model.Merges.Count; rank++)
        {
            (string left, string right) = model.Merges[rank];
            if (!model.Vocab.TryGetValue(left, out int leftId) || !model.Vocab.TryGetValue(right, out int rightId)
                || !model.Vocab.TryGetValue(left + right, out int merged))
                throw new DllmException($"{BpeModelJson.Path}.merges[{rank}]: ('{left}', '{right}') needs '{left}', '{right}' and '{left + right}' in the vocab");
            merges[(leftId, rightId)] = new Merge(rank, merged);
        }
        return merges;
    }

    /// <summary>Byte fallback needs all 256 byte tokens; a vocabulary missing one is refused here rather than encoding to unk later.</summary>
    private static int[] ByteIds(BpeModelJson model)
    {
        var ids = new int[256];
        for (int b = 0; b < 256; b++)
        {
            string token = $"<0x{b:X2}>";
            if (!model.Vocab.TryGetValue(token, out ids[b]))
                throw new DllmException($"{BpeModelJson.Path}: byte_fallback is set but the vocab has no {token} token");
        }
        return ids;
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
