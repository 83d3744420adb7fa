using Dllm.Data;
using Dllm.Evaluation;
using Dllm.Generation;
using Dllm.Import;
using Dllm.Models;
using Dllm.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dllm.Tests.Import;

/// <summary>
/// The real pretrained llama2.c model (../shared/data/stories260K), imported into HF format and
/// run through our loader, tokenizer and decoder, must write llama2.c's own reference story.
/// </summary>
public class Stories260KTests(ITestOutputHelper output)
{
    // llama2.c's test_all.py: `run stories260K.bin -z tok512.bin -t 0.0 -n 200` prints exactly this.
    private const string Reference =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n" +
        "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\n" +
        "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n" +
        "Lily didn't want to help her mom, so she";

    private static string Import(TempDirectory dir)
    {
        var path = dir.File("stories260K");
        Llama2cImporter.Import(TestData.Shared("stories260K/stories260K.bin"), TestData.Shared("stories260K/tok512.bin"), path);
        return path;
    }

    [SharedDataFact("stories260K/stories260K.bin", "stories260K/tok512.bin")]
    public void GreedyDecodingFromBosReproducesLlama2cReferenceStory()
    {
        using var dir = new TempDirectory();
        using var model = LoadedModel.Load(Import(dir));
        // llama2.c counts the BOS position as one of its 200 steps, then prints the 200 tokens it predicts.
        var result = TextGeneration.Generate(model, new GenerationRequest
        {
            Prompt = "",
            Options = new DecodeOptions { MaxNewTokens = 200, StopTokenIds = [] },
        });
        Assert.Equal(Reference, result.Text);
    }

    [Fact]
    public void InterleavedRopeRowsArePermutedToHalves()
    {
        // Head of 4 dims, rows r0..r3 (pairs (r0,r1), (r2,r3)) become (r0, r2, r1, r3).
        TorchRuntime.EnsureLoaded();
        var w = arange(8.0f).reshape(4, 2);
        var permuted = Llama2cImporter.InterleavedToHalves(w, heads: 1);
        Assert.Equal(new float[] { 0, 1, 4, 5, 2, 3, 6, 7 }, permuted.data<float>().ToArray());
    }

    /// <summary>
    /// The AR perplexity docs/benchmarks.md reports for stories260K on the held-out TinyStories split (4.03 over
    /// 44,279 tokens), computed the way bench/scripts/conversion-evidence.sh does: the last 100 stories of
    /// sample.txt written as a corpus file, then `dllm eval --mode ar` (each story on its own, BOS first, EOS
    /// scored, the model's 512-token context).
    /// </summary>
    [SharedDataFact("stories260K/stories260K.bin", "stories260K/tok512.bin", "tinystories/sample.txt")]
    public void HeldOutPerplexityIsTheDocumentedValue()
    {
        using var dir = new TempDirectory();
        using var model = LoadedModel.Load(Import(dir));
        var stories = File.ReadAllText(TestData.Shared("tinystories/sample.txt")).Split("<|endoftext|>\n")
            .Select(d => d.Trim('\n')).Where(d => d.Trim().Length > 0).ToList();
        var heldOut = dir.File("heldout.txt");
        File.WriteAllText(heldOut, string.Concat(stories.TakeLast(100).Select(d => d + "\n<|endoftext|>\n")));

        var documents = CorpusReader.ReadDocuments([heldOut])
            .Select(d => ScoredDocument.FromText(model.Tokenizer, d, model.Model.Config.MaxPositionEmbeddings)).ToList();
        var result = ArNllEvaluator.Evaluate(model.Model, documents);
        output.WriteLine($"stories260K held-out AR perplexity {result.Perplexity:F4} over {result.Tokens} tokens in {result.Documents} stories");
        Assert.Equal((44_279L, 100), (result.Tokens, result.Documents));
        Assert.InRange(result.Perplexity, 4.025, 4.035);   // docs/benchmarks.md: 4.03
    }
}
