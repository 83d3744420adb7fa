using Dllm.Data;
using Dllm.Tokenization;

namespace Dllm.Tests.Data;

/// <summary>Small corpora for the data tests: unique documents of varied length, and helpers to read a cache back.</summary>
internal static class CorpusFiles
{
    /// <summary>Document <paramref name="i"/>: unique text whose length varies from a few to ~60 characters.</summary>
    public static string Document(int i) => $"doc {i}:" + string.Concat(Enumerable.Repeat(" hello", i * 7 % 10));

    public static string[] Documents(int count, int first = 0) => [.. Enumerable.Range(first, count).Select(Document)];

    /// <summary>Writes <paramref name="documents"/> in the TinyStories layout (separator lines) and returns the path.</summary>
    public static string WriteText(string path, IEnumerable<string> documents)
    {
        File.WriteAllText(path, string.Concat(documents.Select(d => d + "\n<|endoftext|>\n")));
        return path;
    }

    /// <summary>Each document's tokens as the cache must store them: Encode with the tokenizer's special tokens (BOS), then EOS.</summary>
    public static int[] Expected(TextTokenizer tokenizer, string document) =>
        [.. tokenizer.Encode(document, addSpecialTokens: true), tokenizer.EosId!.Value];

    /// <summary>The whole training token stream, read back through windows of length 1.</summary>
    public static int[] TrainStream(TokenCorpus corpus)
    {
        PackedSequences tokens = corpus.Train(1);
        return [.. Enumerable.Range(0, checked((int)tokens.Count)).Select(i => tokens.Get(i).Tokens[0])];
    }

    /// <summary>Training documents (each with its EOS), cut from the stream at EOS; valid when no document text holds the EOS string.</summary>
    public static List<int[]> TrainDocuments(TokenCorpus corpus)
    {
        var documents = new List<int[]>();
        var current = new List<int>();
        foreach (int token in TrainStream(corpus))
        {
            current.Add(token);
            if (token != corpus.EosId) continue;
            documents.Add([.. current]);
            current.Clear();
        }
        Assert.Empty(current);
        return documents;
    }

    /// <summary>Counts reports synchronously (Progress&lt;T&gt; would post them to the thread pool, too late to count).</summary>
    public sealed class ProgressCounter : IProgress<long>
    {
        public int Reports { get; private set; }
        public long Last { get; private set; }

        public void Report(long value)
        {
            Reports++;
            Last = value;
        }
    }
}
