using System.Text.Json.Nodes;
using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

/// <summary>SentencePiece-style byte-fallback BPE on a hand-made vocabulary, in both the legacy
/// (Prepend/Replace normalizer) and the Metaspace pre-tokenizer spelling.</summary>
public sealed class SentencePieceBpeTests
{
    private const int Bos = 1, Space = 259, A = 260, B = 261, C = 262, SpaceA = 263, Ab = 264, SpaceAb = 265;

    [Theory]
    [InlineData("ab a", new[] { Bos, SpaceAb, SpaceA })]
    [InlineData("c😀", new[] { Bos, Space, C, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3 })]
    [InlineData("", new[] { Bos })]
    [InlineData("  a", new[] { Bos, Space, Space, SpaceA })]
    public void LegacyNormalizerEncodesToKnownIds(string text, int[] expected)
    {
        TextTokenizer tokenizer = Load(Json());
        Assert.Equal(expected, tokenizer.Encode(text));
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text), skipSpecialTokens: true));
    }

    [Fact]
    public void MetaspacePreTokenizerMatchesLegacyAndPrependsOnlyFirst()
    {
        TextTokenizer legacy = Load(Json());
        TextTokenizer metaspace = Load(MetaspaceJson(split: false));
        foreach (string text in new[] { "ab a", "c😀 ab", "a  b", "" })
        {
            Assert.Equal(legacy.Encode(text), metaspace.Encode(text));
            Assert.Equal(text, metaspace.Decode(metaspace.Encode(text), skipSpecialTokens: true));
        }
        // prepend_scheme "first": text after an added token gets no "▁" (the legacy normalizer adds one).
        Assert.Equal(new[] { Bos, SpaceA, 2, Ab }, metaspace.Encode("a</s>ab"));
        Assert.Equal(new[] { Bos, SpaceA, 2, SpaceAb }, legacy.Encode("a</s>ab"));
        // split=true cuts before every "▁", so "▁" + "ab" still merge but words never join.
        Assert.Equal(new[] { Bos, SpaceAb, SpaceA }, Load(MetaspaceJson(split: true)).Encode("ab a"));
    }

    [Fact]
    public void MergesApplyInRankOrder()
    {
        // Without the ("▁", "ab") merge, which of ("▁", "a") and ("a", "b") ranks first decides the result.
        JsonObject abFirst = Json(), spaceFirst = Json();
        RemoveMerge(abFirst, "\u2581", "ab");
        RemoveMerge(spaceFirst, "\u2581", "ab");
        JsonArray merges = abFirst["model"]!["merges"]!.AsArray();
        JsonNode ab = merges[1]!;
        merges.RemoveAt(1);
        merges.Insert(0, ab);
        Assert.Equal(new[] { Bos, Space, Ab }, Load(abFirst).Encode("ab"));
        Assert.Equal(new[] { Bos, SpaceAb }, Load(spaceFirst).Encode("ab"));
    }

    [Fact]
    public void EncodingEqualsANaiveLowestRankFirstLoop()
    {
        // Pieces reachable by several merge paths, merges in a shuffled order: the priority-queue loop must
        // still merge exactly like the textbook loop (merge the lowest-ranked adjacent pair, leftmost first).
        JsonObject json = Json();
        JsonObject vocab = json["model"]!["vocab"]!.AsObject();
        string[] extra = ["ba", "aba", "bab", "abab", "\u2581b", "\u2581ba", "cc", "ccc", "bc", "\u2581c"];
        for (int i = 0; i < extra.Length; i++) vocab[extra[i]] = 266 + i;
        var pieces = vocab.Select(kv => kv.Key).Where(k => !k.StartsWith('<')).ToHashSet();
        var pairs = pieces.SelectMany(l => pieces.Where(r => pieces.Contains(l + r)).Select(r => (l, r))).ToList();
        var random = new Random(4);
        var merges = pairs.OrderBy(_ => random.Next()).ToList();
        json["model"]!["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m.l, m.r)).ToArray());
        TextTokenizer tokenizer = Load(json);
        var rank = merges.Select((m, i) => (m, i)).ToDictionary(x => x.m, x => x.i);
        for (int n = 0; n < 300; n++)
        {
            string text = new(Enumerable.Range(0, random.Next(1, 24)).Select(_ => "abc é"[random.Next(5)]).ToArray());
            Assert.Equal(NaiveEncode(text, vocab, rank), tokenizer.Encode(text, addSpecialTokens: false));
        }
    }

    private static List<int> NaiveEncode(string text, JsonObject vocab, Dictionary<(string, string), int> rank)
    {
        var symbols = new List<string>();
        foreach (char c in "\u2581" + text.Replace(' ', '\u2581'))
        {
            if (vocab.ContainsKey(c.ToString())) symbols.Add(c.ToString());
            else symbols.AddRange(System.Text.Encoding.UTF8.GetBytes(c.ToString()).Select(b => $"<0x{b:X2}>"));
        }
        while (true)
        {
            int best = -1;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (rank.TryGetValue((symbols[i], symbols[i + 1]), out int r) && (best < 0 || r < rank[(symbols[best], symbols[best + 1])]))
                    best = i;
            if (best < 0) break;
            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }
        return symbols.Select(s => vocab[s]!.GetValue<int>()).ToList();
    }

    [Fact]
    public void PieceWithoutMergesIsNeverBuilt()
    {
        // Older HF converters dropped every merge of some pieces; HF then never produces them.
        JsonObject json = Json();
        RemoveMerge(json, "\u2581", "ab");
        RemoveMerge(json, "\u2581a", "b");
        Assert.Equal(new[] { Bos, SpaceA, B }, Load(json).Encode("ab"));
        Assert.Equal(new[] { Bos, SpaceAb }, Load(Json()).Encode("ab"));
    }

    [Fact]
    public void PieceWithACharacterOutsideTheVocabIsNeverBuilt()
    {
        // HF turns "é" into byte tokens before merging, so the piece "éx" is unreachable; SentencePiece
        // on its own would merge the unknown "é" with "x".
        JsonObject json = Json();
        json["model"]!["vocab"]!["x"] = 266;
        json["model"]!["vocab"]!["éx"] = 267;
        Assert.Equal(new[] { Bos, Space, 0xC3 + 3, 0xA9 + 3, 266 }, Load(json).Encode("éx"));
    }

    [Fact]
    public void ByteTokensMustAllBePresent()
    {
        JsonObject json = Json();
        JsonObject vocab = json["model"]!["vocab"]!.AsObject();
        vocab.Remove("<0x41>");
        vocab["A"] = 3 + 0x41;
        Assert.Contains("the vocab has no <0x41> token", Fails(json));
    }

    internal static JsonObject Json()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] pieces = ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = Space + i;
        string[][] merges = [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"], ["\u2581", "ab"]];
        return new JsonObject
        {
            ["added_tokens"] = new JsonArray(Special(0, "<unk>"), Special(1, "<s>"), Special(2, "</s>")),
            ["normalizer"] = JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"""),
            ["pre_tokenizer"] = null,
            ["post_processor"] = JsonNode.Parse("""{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}}"""),
            ["decoder"] = JsonNode.Parse("""{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["byte_fallback"] = true, ["fuse_unk"] = true, ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray()),
            },
        };
    }

    private static JsonObject MetaspaceJson(bool split)
    {
        JsonObject json = Json();
        json["normalizer"] = null;
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = split };
        json["decoder"] = JsonNode.Parse("""{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false},{"type":"ByteFallback"},{"type":"Fuse"}]}""");
        return json;
    }

    private static void RemoveMerge(JsonObject json, string left, string right)
    {
        JsonArray merges = json["model"]!["merges"]!.AsArray();
        merges.Remove(merges.First(m => m![0]!.GetValue<string>() == left && m[1]!.GetValue<string>() == right));
    }

    private static TextTokenizer Load(JsonObject json)
    {
        using var dir = new TempDirectory();
        return TinyByteLevelTokenizer.Load(dir, json);
    }

    private static string Fails(JsonObject json) => Assert.Throws<DllmException>(() => Load(json)).Message;

    private static JsonObject Special(int id, string content) =>
        new() { ["id"] = id, ["content"] = content, ["normalized"] = false, ["special"] = true };
}
