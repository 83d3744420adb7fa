using Dllm.Data;
using Dllm.Tests.Tokenization;
using Dllm.Tokenization;
using Xunit.Abstractions;

namespace Dllm.Tests.Data;

public class TinyStoriesCorpusTests(ITestOutputHelper output)
{
    [SharedDataFact("stories260K/tok512.bin", "tinystories/sample.txt")]
    public void Sample_tokenizes_into_2316_documents_whose_tokens_add_up()
    {
        TextTokenizer tokenizer = Llama2cAssets.Imported!;
        string sample = TestData.Shared("tinystories/sample.txt");
        using var dir = new TempDirectory();

        using var corpus = TokenCorpus.Build([sample], tokenizer, dir.File("cache"), new CorpusOptions());

        string[] documents = [.. CorpusReader.ReadDocuments([sample])];
        Assert.Equal(2316, documents.Length);
        Assert.StartsWith("One day, a little girl named Lily found a needle", documents[0]);
        Assert.Equal(2316, corpus.TrainDocuments + corpus.ValidDocuments);
        Assert.InRange(corpus.ValidDocuments, 20, 80); // 2% of 2316 is about 46
        long expectedTokens = documents.Sum(d => (long)tokenizer.Encode(d, addSpecialTokens: true).Count + 1);
        Assert.Equal(expectedTokens, corpus.TrainTokens + corpus.ValidTokens);
        Assert.Equal(corpus.ValidTokens, corpus.ValidationDocuments().Sum(d => (long)d.Length));
        Assert.Equal(corpus.TrainTokens * sizeof(int), new FileInfo(Path.Combine(dir.File("cache"), "train.tokens")).Length);
        Assert.Equal(2, corpus.EosId); // llama2c: </s>
        output.WriteLine($"{corpus.TrainDocuments} train documents, {corpus.TrainTokens} tokens; {corpus.ValidDocuments} validation documents, {corpus.ValidTokens} tokens");
    }
}
