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

    private static string? Import(TempDirectory dir)
    {
        if (TestData.SharedData is null) return null;
        var folder = Path.Combine(TestData.SharedData, "stories260K");
        var path = dir.File("stories260K");
        Llama2cImporter.Import(Path.Combine(folder, "stories260K.bin"), Path.Combine(folder, "tok512.bin"), path);
        return path;
    }

    [Fact]
    public void GreedyDecodingFromBosReproducesLlama2cReferenceStory()
    {
        using var dir = new TempDirectory();
        if (Import(dir) is not { } path) { output.WriteLine(TestData.MissingMessage); return; }
        using var model = LoadedModel.Load(path);
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

    [Fact]
    public void PerplexityOnTinyStoriesIsReported()
    {
        using var dir = new TempDirectory();
        if (Import(dir) is not { } path) { output.WriteLine(TestData.MissingMessage); return; }
        using var model = LoadedModel.Load(path);
        var stories = File.ReadAllText(Path.Combine(TestData.SharedData!, "tinystories", "sample.txt"))
            .Split("<|endoftext|>", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Take(100).ToList();
        double nll = 0;
        long count = 0;
        using var noGrad = no_grad();
        foreach (var story in stories)
        {
            using var scope = NewDisposeScope();
            var ids = model.Tokenizer.Encode(story).Take(512).Select(x => (long)x).ToArray();
            var logits = model.Model.Forward(tensor(ids).unsqueeze(0))[0];
            var ce = nn.functional.cross_entropy(logits.narrow(0, 0, ids.Length - 1), tensor(ids[1..]), reduction: nn.Reduction.Sum);
            nll += ce.item<float>();
            count += ids.Length - 1;
        }
        var ppl = Math.Exp(nll / count);
        output.WriteLine($"stories260K AR perplexity on the first {stories.Count} TinyStories stories ({count} tokens): {ppl:F3}");
        Assert.InRange(ppl, 1.5, 12.0);   // a 512-token vocabulary model on its own training distribution
    }
}
