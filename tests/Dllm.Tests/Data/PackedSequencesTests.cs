using Dllm.Data;
using Dllm.Tokenization;

namespace Dllm.Tests.Data;

public class PackedSequencesTests
{
    private static readonly TextTokenizer Tokenizer = TinyCheckpoints.Tokenizer();

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    public void Windows_tile_the_token_stream_without_overlap_and_drop_the_partial_tail(int length)
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(40));
        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0));
        int[] stream = [.. CorpusFiles.Documents(40).SelectMany(d => CorpusFiles.Expected(Tokenizer, d))];

        PackedSequences windows = corpus.Train(length);

        Assert.Equal(length, windows.SequenceLength);
        Assert.Equal(stream.Length / length, windows.Count);
        int[] joined = [.. Enumerable.Range(0, (int)windows.Count).SelectMany(i => windows.Get(i).Tokens)];
        Assert.Equal(stream.Take((int)windows.Count * length), joined);
        Assert.Throws<ArgumentOutOfRangeException>(() => windows.Get(windows.Count));
        Assert.Throws<ArgumentOutOfRangeException>(() => windows.Get(-1));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(16)]
    public void Document_ids_start_at_zero_in_each_window_and_step_by_one_right_after_each_eos(int length)
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(60));
        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0));
        PackedSequences windows = corpus.Train(length);

        int continued = 0;
        for (long w = 0; w < windows.Count; w++)
        {
            var (tokens, ids) = windows.Get(w);
            Assert.Equal(0, ids[0]);
            for (int i = 1; i < length; i++)
                Assert.Equal(ids[i - 1] + (tokens[i - 1] == corpus.EosId ? 1 : 0), ids[i]);
            if (w > 0 && windows.Get(w - 1).Tokens[^1] != corpus.EosId) continued++;
        }
        Assert.True(continued > 0, "no document crosses a window boundary; the test would not cover that case");
    }

    [Fact]
    public void Document_ids_follow_document_boundaries_not_eos_text_inside_a_document()
    {
        using var dir = new TempDirectory();
        string path = dir.File("c.jsonl");
        // Encode maps the literal "<|endoftext|>" inside a text to the EOS id, yet it is still one document.
        File.WriteAllLines(path, ["""{"text": "hello<|endoftext|>the"}""", """{"text": "xyz"}"""]);
        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0));
        int[] first = CorpusFiles.Expected(Tokenizer, "hello<|endoftext|>the"), second = CorpusFiles.Expected(Tokenizer, "xyz");
        Assert.Equal(2, first.Count(t => t == corpus.EosId));

        var (tokens, ids) = corpus.Train((int)corpus.TrainTokens).Get(0);

        Assert.Equal(first.Concat(second), tokens);
        Assert.Equal(Enumerable.Repeat(0, first.Length).Concat(Enumerable.Repeat(1, second.Length)), ids);
    }

    [Fact]
    public void Valid_windows_pack_the_validation_documents()
    {
        using var dir = new TempDirectory();
        string path = CorpusFiles.WriteText(dir.File("c.txt"), CorpusFiles.Documents(200));
        using var corpus = TokenCorpus.Build([path], Tokenizer, dir.File("cache"), new CorpusOptions(ValidationFraction: 0.3));
        int[] stream = [.. corpus.ValidationDocuments().SelectMany(d => d)];

        PackedSequences windows = corpus.Valid(9);

        Assert.Equal(corpus.ValidTokens, stream.Length);
        Assert.Equal(stream.Length / 9, windows.Count);
        Assert.Equal(stream.Take((int)windows.Count * 9), Enumerable.Range(0, (int)windows.Count).SelectMany(i => windows.Get(i).Tokens));
    }
}
