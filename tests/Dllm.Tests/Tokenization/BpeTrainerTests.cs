using System.Text.Json.Nodes;
using Dllm.Demo;
using Dllm.Tests.Demo;
using Dllm.Tokenization;
using static Dllm.Tests.Tokenization.TinyByteLevelTokenizer;

namespace Dllm.Tests.Tokenization;

[Collection(DemoCollection.Name)]
public sealed class BpeTrainerTests(DemoFixture data)
{
    [Fact]
    public void TinyTextMergesTheMostFrequentPairFirstAndBreaksTiesByOlderIds()
    {
        // Pre-tokens "aaab", " aaab", " ab". Pair counts: a a = 4, a b = 3, Ġ a = 2, so "a a" comes first.
        // Then: a b = 3 (in [aa a b] twice, [Ġ a b] once); then aa ab = 2; then Ġ ab and Ġ aaab tie at 1,
        // and the pair with the older right token (ab = 257 < aaab = 258) wins.
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = BpeTrainer.Train(["aaab aaab ab"], 260, dir.Path);

        JsonObject model = ReadJson(dir.File("tokenizer.json"))["model"]!.AsObject();
        Assert.Equal(["a a", "a b", "aa ab", "Ġ ab"], model["merges"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal((256, 257, 258, 259), (Id(model, "aa"), Id(model, "ab"), Id(model, "aaab"), Id(model, "Ġab")));
        Assert.Equal(261, tokenizer.VocabSize);
        Assert.Equal(260, tokenizer.EosId);
        Assert.Equal([258, 259], tokenizer.Encode("aaab ab"));
        Assert.Equal([258, ' ', 258], tokenizer.Encode("aaab aaab")); // no "Ġaaab" merge was learned
    }

    [Fact]
    public void TextWithTooFewPairsOrASizeBelowTheBytesIsRejected()
    {
        using var dir = new TempDirectory();
        // The text above has only five merges in it: a sixth cannot be learned.
        Assert.Throws<DllmException>(() => BpeTrainer.Train(["aaab aaab ab"], 262, dir.Path));
        Assert.Throws<DllmException>(() => BpeTrainer.Train(["aaab"], 255, dir.Path));
        Assert.Throws<DllmException>(() => BpeTrainer.Train(["aaab"], 257, dir.Path, ["<|x|>", "<|x|>"]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void SpecialTokensInTheTextAreCutOutBeforeCountingAndGetIdsAfterTheVocab()
    {
        string[] documents = [.. Enumerable.Repeat("ab<|endoftext|>ab<|im_end|>", 20)];
        using var dir = new TempDirectory();
        // Only "ab" is left between the specials, so "a b" is the one pair there is; their "<|" would give more.
        TextTokenizer tokenizer = BpeTrainer.Train(documents, 257, dir.Path, ["<|endoftext|>", "<|im_end|>"]);
        Assert.Equal(["a b"], ReadJson(dir.File("tokenizer.json"))["model"]!["merges"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Throws<DllmException>(() => BpeTrainer.Train(documents, 258, dir.Path, ["<|endoftext|>", "<|im_end|>"]));

        Assert.Equal((257, 258, 259), (tokenizer.TokenToId("<|endoftext|>"), tokenizer.TokenToId("<|im_end|>"), tokenizer.VocabSize));
        Assert.Equal(257, tokenizer.EosId);
        Assert.Equal([256, 257, 256, 258], tokenizer.Encode(documents[0]));
    }

    [Fact]
    public void TheVocabularyHasTheRequestedSizeAndEveryMergeIsBuiltFromEarlierTokens()
    {
        JsonObject json = ReadJson(Path.Combine(data.TokenizerDirectory, "tokenizer.json"));
        JsonObject vocab = json["model"]!["vocab"]!.AsObject();
        Assert.Equal(DemoFixture.VocabSize + 1, vocab.Count);
        Assert.Equal(Enumerable.Range(0, vocab.Count), vocab.Select(p => p.Value!.GetValue<int>()).Order());
        for (int b = 0; b < 256; b++) Assert.Equal(b, vocab[ByteChar(b).ToString()]!.GetValue<int>());

        string[] merges = json["model"]!["merges"]!.AsArray().Select(m => m!.GetValue<string>()).ToArray();
        Assert.Equal(DemoFixture.VocabSize - 256, merges.Length);
        for (int i = 0; i < merges.Length; i++)
        {
            string[] parts = merges[i].Split(' ');
            Assert.Equal(2, parts.Length);
            int result = vocab[parts[0] + parts[1]]!.GetValue<int>();
            Assert.Equal(256 + i, result); // each merge adds the next id
            Assert.True(vocab[parts[0]]!.GetValue<int>() < result && vocab[parts[1]]!.GetValue<int>() < result, $"merge {i} '{merges[i]}' uses a later token");
        }

        JsonArray added = json["added_tokens"]!.AsArray();
        Assert.Single(added);
        Assert.Equal(("<|endoftext|>", DemoFixture.VocabSize, true), (added[0]!["content"]!.GetValue<string>(), added[0]!["id"]!.GetValue<int>(), added[0]!["special"]!.GetValue<bool>()));
        Assert.Equal(DemoFixture.VocabSize, vocab["<|endoftext|>"]!.GetValue<int>());
    }

    [Fact]
    public void TheFilesDescribeAGpt2StyleTokenizer()
    {
        JsonObject json = ReadJson(Path.Combine(data.TokenizerDirectory, "tokenizer.json"));
        JsonArray steps = json["pre_tokenizer"]!["pretokenizers"]!.AsArray();
        Assert.Equal(("Sequence", "Split", "Isolated", "ByteLevel", false, false), (
            json["pre_tokenizer"]!["type"]!.GetValue<string>(), steps[0]!["type"]!.GetValue<string>(), steps[0]!["behavior"]!.GetValue<string>(),
            steps[1]!["type"]!.GetValue<string>(), steps[1]!["add_prefix_space"]!.GetValue<bool>(), steps[1]!["use_regex"]!.GetValue<bool>()));
        Assert.Equal(BpeTrainer.Pattern, steps[0]!["pattern"]!["Regex"]!.GetValue<string>());
        Assert.Equal(("ByteLevel", "ByteLevel", "BPE", false), (json["decoder"]!["type"]!.GetValue<string>(),
            json["post_processor"]!["type"]!.GetValue<string>(), json["model"]!["type"]!.GetValue<string>(), json["model"]!["byte_fallback"]!.GetValue<bool>()));

        JsonObject config = ReadJson(Path.Combine(data.TokenizerDirectory, "tokenizer_config.json"));
        Assert.Equal(("GPT2Tokenizer", false, "<|endoftext|>", "<|endoftext|>"), (config["tokenizer_class"]!.GetValue<string>(),
            config["add_bos_token"]!.GetValue<bool>(), config["eos_token"]!.GetValue<string>(), config["pad_token"]!.GetValue<string>()));
        Assert.True(config.ContainsKey("bos_token") && config["bos_token"] is null);
        Assert.True(config["model_max_length"]!.GetValue<int>() > 0);

        TextTokenizer tokenizer = data.Tokenizer;
        Assert.Equal(DemoFixture.VocabSize + 1, tokenizer.VocabSize);
        Assert.Equal((DemoFixture.VocabSize, DemoFixture.VocabSize, (int?)null, (int?)null), (tokenizer.EosId, tokenizer.PadId, tokenizer.BosId, tokenizer.MaskId));
        Assert.True(tokenizer.IsSpecial(DemoFixture.VocabSize));
        Assert.Equal(tokenizer.Encode("Lily ran.", addSpecialTokens: false), tokenizer.Encode("Lily ran.")); // nothing added
    }

    [Fact]
    public void DecodeOfEncodeGivesBackCorpusTextNumbersPunctuationAndUnseenCharacters()
    {
        TextTokenizer tokenizer = data.Tokenizer;
        IEnumerable<string> texts = SyntheticCorpus.ParseDocuments(data.ValidText)
            .Concat(SyntheticCorpus.Kinds.SelectMany(k => SyntheticCorpus.Tasks(k, 100, 77)).Select(t => t.Prompt + t.Answer))
            .Concat([
                "Compute: 999 + 1 = 1000", "It's 3:45, isn't it?! (Yes.) \"Quoted\" -> done...",
                "  two  spaces\n\nnew paragraph\tand a tab ", "café naïve 😀 — “curly” ½ 漢字", "", "<|endoftext|>",
                "a<|endoftext|>b", string.Concat(Enumerable.Range(0, 128).Select(c => (char)c)),
            ]);
        foreach (string text in texts) Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void DigitsAreOneTokenEachSoNumbersAreSpeltOut()
    {
        TextTokenizer tokenizer = data.Tokenizer;
        foreach (string text in new[] { "Compute: 999 + 1 = 1000", "Table: cat=3 dog=75. Find: dog ->", "12345 and 6" })
        {
            string[] tokens = tokenizer.Encode(text).Select(id => tokenizer.Decode([id])).ToArray();
            Assert.All(tokens, t => Assert.True(t.Count(char.IsAsciiDigit) <= 1, $"token '{t}' holds several digits"));
            Assert.Equal(text.Count(char.IsAsciiDigit), tokens.Count(t => t.Any(char.IsAsciiDigit)));
        }
    }

    [Theory]
    [InlineData("copy")]
    [InlineData("reverse")]
    [InlineData("lookup")]
    public void EveryTaskItemIsOneTokenSoAnswersAreAsLongAsTheirItemCount(string kind)
    {
        // What the demo's TPF figures rest on: a copy of n words is n tokens (lookup: key, "=" and digit per entry), plus EOS.
        TextTokenizer tokenizer = data.Tokenizer;
        foreach (DemoTask task in SyntheticCorpus.Tasks(kind, 300, 31))
        {
            var items = task.Answer.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            Assert.Equal(kind == "lookup" ? 3 * items : items, tokenizer.Encode(task.Answer, addSpecialTokens: false).Count);
        }
    }

    [Fact]
    public void StoriesTakeFarFewerTokensThanBytesAndTasksFitATrainingWindow()
    {
        TextTokenizer tokenizer = data.Tokenizer;
        string[] stories = SyntheticCorpus.Stories(300, 41).ToArray(); // not the stories it was trained on
        long bytes = stories.Sum(s => (long)s.Length), tokens = stories.Sum(s => (long)tokenizer.Encode(s).Count);
        double perByte = (double)tokens / bytes;
        Assert.True(perByte < 0.45, $"{perByte:F3} tokens per byte");

        foreach (DemoTask task in SyntheticCorpus.Kinds.SelectMany(k => SyntheticCorpus.Tasks(k, 200, 43)))
        {
            // Prompt and answer together fit the demo's 128-token training windows with room to spare.
            Assert.InRange(tokenizer.Encode(task.Prompt).Count, 8, 64);
            Assert.InRange(tokenizer.Encode(task.Answer).Count, 8, 40);
        }
    }

    [Fact]
    public void TrainingIsDeterministicAndIndependentOfDocumentOrder()
    {
        List<string> documents = data.TrainDocuments.Take(3000).ToList();
        using var first = new TempDirectory();
        using var second = new TempDirectory();
        using var reversed = new TempDirectory();
        BpeTrainer.Train(documents, 600, first.Path);
        BpeTrainer.Train(documents, 600, second.Path);
        BpeTrainer.Train(Enumerable.Reverse(documents), 600, reversed.Path);
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            Assert.Equal(File.ReadAllBytes(first.File(file)), File.ReadAllBytes(second.File(file)));
            Assert.Equal(File.ReadAllBytes(first.File(file)), File.ReadAllBytes(reversed.File(file)));
        }
    }

    [Fact]
    public void TheTrainersByteAlphabetIsTheLoadersAndGpt2s()
    {
        for (int b = 0; b < 256; b++)
        {
            char c = Dllm.Tokenization.ByteLevelAlphabet.Of((byte)b);
            Assert.Equal(ByteChar(b), c);
            var bytes = new List<byte>();
            ByteLevelAlphabet.AppendBytes(c.ToString(), bytes);
            Assert.Equal([(byte)b], bytes);
        }
    }

    private static int Id(JsonObject model, string token) => model["vocab"]![token]!.GetValue<int>();

    private static JsonObject ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();
}
