using Dllm.Data;
using Dllm.Tokenization;

namespace Dllm.Tests.Data;

public class TokenCorpusTests
{
    private static readonly TextTokenizer Tokenizer = TinyCheckpoints.Tokenizer();

    [Fact]
    public void Every_document_is_stored_once_in_order_as_its_tokens_then_eos_in_exactly_one_split()
    {
        using var dir = new TempDirectory();
        string[] documents = CorpusFiles.Documents(200);
        string path = CorpusFiles.WriteText(dir.File("c.txt"), documents);

        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0.2, Seed: 5));

        var train = new Queue<int[]>(CorpusFiles.TrainDocuments(corpus));
        var valid = new Queue<int[]>(corpus.ValidationDocuments());
        Assert.Equal(corpus.TrainDocuments, train.Count);
        Assert.Equal(corpus.ValidDocuments, valid.Count);
        Assert.InRange(valid.Count, 20, 60); // ~40 expected at 20%
        foreach (string document in documents)
        {
            int[] expected = CorpusFiles.Expected(Tokenizer, document);
            // Documents are unique, so each must be the head of exactly one queue; both splits keep corpus order.
            bool inTrain = train.TryPeek(out int[]? t) && t.SequenceEqual(expected);
            bool inValid = valid.TryPeek(out int[]? v) && v.SequenceEqual(expected);
            Assert.True(inTrain ^ inValid, $"'{document}' is in {(inTrain ? "both splits" : "neither split")} at its place");
            (inTrain ? train : valid).Dequeue();
        }
        Assert.Empty(train);
        Assert.Empty(valid);
        Assert.Equal(documents.Sum(d => (long)CorpusFiles.Expected(Tokenizer, d).Length), corpus.TrainTokens + corpus.ValidTokens);
        Assert.Equal(Tokenizer.EosId, corpus.EosId);
    }

    [Fact]
    public void Cache_files_have_the_documented_layout()
    {
        using var dir = new TempDirectory();
        string[] documents = ["hello", "the hello", "x"];
        string path = CorpusFiles.WriteText(dir.File("c.txt"), documents);
        string cache = dir.File("cache");

        using (TokenCorpus.Build([path], Tokenizer, cache, new CorpusOptions(ValidationFraction: 0))) { }

        int[][] expected = [.. documents.Select(d => CorpusFiles.Expected(Tokenizer, d))];
        byte[] tokens = File.ReadAllBytes(Path.Combine(cache, "train.tokens"));
        Assert.Equal(expected.SelectMany(d => d).SelectMany(BitConverter.GetBytes), tokens); // int32, little-endian host
        long[] starts = [0, expected[0].Length, expected[0].Length + expected[1].Length];
        Assert.Equal(starts.SelectMany(BitConverter.GetBytes), File.ReadAllBytes(Path.Combine(cache, "train.docs")));
        Assert.Empty(File.ReadAllBytes(Path.Combine(cache, "valid.tokens")));
        Assert.Empty(File.ReadAllBytes(Path.Combine(cache, "valid.docs")));
        string manifest = File.ReadAllText(Path.Combine(cache, "manifest.json"));
        Assert.Contains(Path.GetFullPath(path), manifest);
        Assert.Contains("\"tokenizer\": \"", manifest);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*")); // no temp or old folders left behind
    }

    [Fact]
    public void Validation_split_is_deterministic_disjoint_and_stable_across_rebuilds()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(300));
        var options = new CorpusOptions(ValidationFraction: 0.1, Seed: 42);

        List<int[]> first, firstTrain, rebuilt, otherFolder, otherSeed;
        using (var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), options))
        {
            first = [.. corpus.ValidationDocuments()];
            firstTrain = CorpusFiles.TrainDocuments(corpus);
        }
        using (var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), options)) rebuilt = [.. corpus.ValidationDocuments()];
        using (var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("other"), options)) otherFolder = [.. corpus.ValidationDocuments()];
        using (var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("seed"), options with { Seed = 43 })) otherSeed = [.. corpus.ValidationDocuments()];

        Assert.NotEmpty(first);
        Assert.Equal(first, rebuilt);
        Assert.Equal(first, otherFolder);
        Assert.NotEqual(first, otherSeed);
        var trainSet = firstTrain.Select(d => string.Join(",", d)).ToHashSet();
        Assert.DoesNotContain(first, d => trainSet.Contains(string.Join(",", d)));
    }

    [Fact]
    public void Appending_documents_keeps_the_earlier_validation_choice()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(100));
        var options = new CorpusOptions(ValidationFraction: 0.2, Seed: 1);
        List<int[]> before, after;
        using (var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), options)) before = [.. corpus.ValidationDocuments()];

        File.AppendAllText(path, string.Concat(CorpusFiles.Documents(100, first: 100).Select(d => d + "\n<|endoftext|>\n")));
        using (var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), options)) after = [.. corpus.ValidationDocuments()];

        Assert.True(after.Count > before.Count);
        Assert.Equal(before, after.Take(before.Count));
    }

    [Fact]
    public void Validation_documents_are_capped()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(100));

        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0.5, MaxValidationDocuments: 3));

        Assert.Equal(3, corpus.ValidDocuments);
        Assert.Equal(97, corpus.TrainDocuments);
    }

    [Fact]
    public void Cache_is_reused_when_nothing_changed_and_rebuilt_when_a_source_or_option_changes()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(50));
        string cache = dir.File("cache"), tokens = Path.Combine(cache, "train.tokens");
        var options = new CorpusOptions(ValidationFraction: 0.1);

        var built = new CorpusFiles.ProgressCounter();
        using (TokenCorpus.BuildOrOpen([path], Tokenizer, cache, options, built)) { }
        Assert.True(built.Reports > 0);
        Assert.Equal(50, built.Last);
        DateTime writtenAt = File.GetLastWriteTimeUtc(tokens);

        // Same files, an equal tokenizer loaded afresh, equal options: nothing is encoded or written.
        var reused = new CorpusFiles.ProgressCounter();
        using (var corpus = TokenCorpus.BuildOrOpen([path], TinyCheckpoints.Tokenizer(), cache, options with { }, reused))
            Assert.Equal(50, corpus.TrainDocuments + corpus.ValidDocuments);
        Assert.Equal(0, reused.Reports);
        Assert.Equal(writtenAt, File.GetLastWriteTimeUtc(tokens));

        // A source edit (new size, new time) forces a rebuild that sees the new content.
        File.AppendAllText(path, "one more\n<|endoftext|>\n");
        var changed = new CorpusFiles.ProgressCounter();
        using (var corpus = TokenCorpus.BuildOrOpen([path], Tokenizer, cache, options, changed))
            Assert.Equal(51, corpus.TrainDocuments + corpus.ValidDocuments);
        Assert.Equal(51, changed.Last);

        // Touching the file alone changes its stamp: rebuilt too (size and time are all we compare).
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddMinutes(-5));
        var touched = new CorpusFiles.ProgressCounter();
        using (TokenCorpus.BuildOrOpen([path], Tokenizer, cache, options, touched)) { }
        Assert.True(touched.Reports > 0);

        var otherOptions = new CorpusFiles.ProgressCounter();
        using (TokenCorpus.BuildOrOpen([path], Tokenizer, cache, options with { Seed = 9 }, otherOptions)) { }
        Assert.True(otherOptions.Reports > 0);
    }

    [Fact]
    public void A_different_tokenizer_invalidates_the_cache()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(10));
        string cache = dir.File("cache");
        var options = new CorpusOptions();
        using (TokenCorpus.BuildOrOpen([path], Tokenizer, cache, options)) { }

        TextTokenizer extended = Tokenizer.WithAddedSpecialToken("<|mask|>", out _);
        var progress = new CorpusFiles.ProgressCounter();
        using (TokenCorpus.BuildOrOpen([path], extended, cache, options, progress)) { }

        Assert.True(progress.Reports > 0);
    }

    [Fact]
    public void Damaged_cache_is_an_error_on_open_and_rebuilt_by_build_or_open()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(20));
        string cache = dir.File("cache"), tokens = Path.Combine(cache, "train.tokens");
        using (TokenCorpus.Build([path], Tokenizer, cache, new CorpusOptions())) { }
        long length = new FileInfo(tokens).Length;
        using (var stream = new FileStream(tokens, FileMode.Open)) stream.SetLength(length - 4);

        var error = Assert.Throws<DllmException>(() => TokenCorpus.Open(cache));
        Assert.Contains(tokens, error.Message);
        Assert.Contains("damaged", error.Message);

        using (TokenCorpus.BuildOrOpen([path], Tokenizer, cache, new CorpusOptions())) { }
        Assert.Equal(length, new FileInfo(tokens).Length);
    }

    [Fact]
    public void Open_of_a_folder_without_manifest_is_an_error()
    {
        using var dir = new TempDirectory();

        var error = Assert.Throws<DllmException>(() => TokenCorpus.Open(dir.Path));

        Assert.Contains(dir.Path, error.Message);
        Assert.Contains("manifest.json", error.Message);
    }

    [Fact]
    public void Build_refuses_to_replace_a_folder_that_is_not_a_cache()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(5));
        Directory.CreateDirectory(dir.File("precious"));
        File.WriteAllText(Path.Combine(dir.File("precious"), "notes.txt"), "keep me");

        var error = Assert.Throws<DllmException>(() => TokenCorpus.Build([path], Tokenizer, dir.File("precious"), new CorpusOptions()));

        Assert.Contains("refusing", error.Message);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(dir.File("precious"), "notes.txt")));
    }

    [Fact]
    public void Empty_corpus_is_an_error_and_leaves_no_cache()
    {
        using var dir = new TempDirectory();
        string path = dir.File("empty.txt");
        File.WriteAllText(path, "\n  \n<|endoftext|>\n\n");

        var error = Assert.Throws<DllmException>(() => TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions()));

        Assert.Contains("no documents", error.Message);
        Assert.Contains(path, error.Message);
        Assert.False(Directory.Exists(dir.File("cache")));
        Assert.Single(Directory.GetFileSystemEntries(dir.Path)); // only empty.txt: the temp folder is gone
    }

    [Fact]
    public void Missing_source_file_is_an_error_naming_it()
    {
        using var dir = new TempDirectory();
        string missing = dir.File("nope.txt");

        var error = Assert.Throws<DllmException>(() => TokenCorpus.BuildOrOpen([missing], Tokenizer, dir.File("cache"), new CorpusOptions()));

        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public void A_split_too_small_for_one_sequence_says_how_many_tokens_it_has_and_needs()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), ["hello"]);
        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0));
        long have = corpus.TrainTokens;

        var train = Assert.Throws<DllmException>(() => corpus.Train(64));
        Assert.Contains($"train split has {have} tokens", train.Message);
        Assert.Contains("needs 64", train.Message);
        var valid = Assert.Throws<DllmException>(() => corpus.Valid(8));
        Assert.Contains("valid split has 0 tokens", valid.Message);
        Assert.Equal(have, corpus.Train((int)have).Count * have);
    }

    [Theory]
    [InlineData(-0.1, 10)]
    [InlineData(1.5, 10)]
    [InlineData(double.NaN, 10)]
    [InlineData(0.1, -1)]
    public void Out_of_range_options_are_errors(double fraction, int maxDocuments)
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), ["hello"]);

        Assert.Throws<DllmException>(() => TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(fraction, 0, maxDocuments)));
    }

    [Fact]
    public async Task Jsonl_and_parquet_corpora_use_the_text_field_option()
    {
        using var dir = new TempDirectory();
        string jsonl = dir.File("a.jsonl"), parquet = dir.File("b.parquet");
        File.WriteAllLines(jsonl, ["""{"body": "hello"}""", """{"body": "the"}"""]);
        await CorpusReaderTests.WriteParquet(parquet, "body", [["x", "hello the"]]);

        using var corpus = TokenCorpus.Build([jsonl, parquet], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0) { TextField = "body" });

        int[][] expected = [.. new[] { "hello", "the", "x", "hello the" }.Select(d => CorpusFiles.Expected(Tokenizer, d))];
        Assert.Equal(expected, CorpusFiles.TrainDocuments(corpus));
    }
}
