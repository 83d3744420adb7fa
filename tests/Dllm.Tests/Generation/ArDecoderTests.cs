using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

public class ArDecoderTests
{
    public ArDecoderTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Archs => new(TinyConfigs.Architectures);

    /// <summary>Reference: recompute the whole sequence every step, no cache, no batching.</summary>
    private static int[] NaiveGreedy(CausalLM model, IReadOnlyList<int> prompt, int maxNew, int stop)
    {
        using var noGrad = no_grad();
        var ids = prompt.Select(x => (long)x).ToList();
        var result = new List<int>();
        for (var i = 0; i < maxNew; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(tensor(ids.ToArray()).unsqueeze(0));
            var next = (int)logits[0, -1].argmax().item<long>();
            if (next == stop) break;
            result.Add(next);
            ids.Add(next);
        }
        return result.ToArray();
    }

    [Theory]
    [MemberData(nameof(Archs))]
    public void CachedBatchedGreedyEqualsNaiveDecodingOfEachPrompt(string arch)
    {
        using var model = TinyConfigs.Model(arch, seed: 11);
        int[][] prompts = [[5, 9, 13, 2 + 40, 7], [30], [8, 8, 21]];
        var stop = 4;
        var options = new DecodeOptions { MaxNewTokens = 12, StopTokenIds = [stop] };
        var results = DecodeCollector.Collect(ArDecoder.Run(model, prompts, options), prompts.Length);
        for (var i = 0; i < prompts.Length; i++)
        {
            var expected = NaiveGreedy(model, prompts[i], 12, stop);
            Assert.Equal(expected, results[i].Tokens);
            Assert.Equal(expected.Length < 12 ? FinishReason.Stop : FinishReason.Length, results[i].Finish);
        }
    }

    [Fact]
    public void ASequenceThatStopsLeavesTheBatchAndTheOthersAreUnaffected()
    {
        using var model = TinyConfigs.Model("qwen2", seed: 5);
        int[][] prompts = [[3, 4, 5], [6, 7]];
        // Use the first greedy token of prompt 0 as its stop token so it ends at once.
        var first = DecodeCollector.Collect(ArDecoder.Run(model, [prompts[0]], new DecodeOptions { MaxNewTokens = 1 }), 1)[0].Tokens[0];
        var alone = DecodeCollector.Collect(ArDecoder.Run(model, [prompts[1]], new DecodeOptions { MaxNewTokens = 10 }), 1)[0];
        if (alone.Tokens.Contains(first)) return; // the stop token would also stop the other sequence; nothing to compare
        var options = new DecodeOptions { MaxNewTokens = 10, StopTokenIds = [first] };
        var steps = ArDecoder.Run(model, prompts, options).ToList();
        var results = DecodeCollector.Collect(steps, 2);
        Assert.Empty(results[0].Tokens);
        Assert.Equal(FinishReason.Stop, results[0].Finish);
        Assert.Equal(alone.Tokens, results[1].Tokens);
        Assert.All(steps.Skip(1), s => Assert.DoesNotContain(s.Updates, u => u.Sequence == 0));
        Assert.Equal(10, steps.Count);   // one forward per generated token
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndIndependentOfBatchmates()
    {
        using var model = TinyConfigs.Model("llama", seed: 2);
        var options = new DecodeOptions { MaxNewTokens = 8, Sampling = new SamplingOptions(1.0, TopK: 20, TopP: 0.95, Seed: 7) };
        var alone = DecodeCollector.Collect(ArDecoder.Run(model, [[9, 10]], options), 1)[0].Tokens;
        var again = DecodeCollector.Collect(ArDecoder.Run(model, [[9, 10]], options), 1)[0].Tokens;
        var batched = DecodeCollector.Collect(ArDecoder.Run(model, [[1, 2, 3, 4], [9, 10]], options), 2)[1].Tokens;
        Assert.Equal(alone, again);
        Assert.Equal(alone, batched);
    }

    [Fact]
    public void PromptLongerThanTheContextIsAClearError()
    {
        using var model = TinyConfigs.Model("llama");
        var prompt = Enumerable.Repeat(5, model.Config.MaxPositionEmbeddings).ToArray();
        var e = Assert.Throws<DllmException>(() => ArDecoder.Run(model, [prompt], new DecodeOptions()).ToList());
        Assert.Contains("context", e.Message);
    }

    [Fact]
    public void GenerationNearTheContextEndStopsWithLength()
    {
        using var model = TinyConfigs.Model("llama");
        var prompt = Enumerable.Repeat(5, model.Config.MaxPositionEmbeddings - 3).ToArray();
        var r = DecodeCollector.Collect(ArDecoder.Run(model, [prompt], new DecodeOptions { MaxNewTokens = 50 }), 1)[0];
        Assert.Equal(3, r.Tokens.Length);
        Assert.Equal(FinishReason.Length, r.Finish);
    }
}

public class PerSequenceOptionsTests
{
    public PerSequenceOptionsTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void RequestsWithDifferentLimitsAndSamplingShareABatchYetDecodeAsAlone()
    {
        using var model = TinyConfigs.Model("llada2", seed: 9);
        int[][] prompts = [[5, 6, 7], [20, 21], [30, 31, 32, 33, 34]];
        DecodeOptions[] options =
        [
            new() { MaxNewTokens = 3 },
            new() { MaxNewTokens = 9, Sampling = new SamplingOptions(0.8, TopK: 30, Seed: 4) },
            new() { MaxNewTokens = 6, Sampling = new SamplingOptions(1.2, TopP: 0.9, Seed: 11) },
        ];
        var ar = DecodeCollector.Collect(ArDecoder.Run(model, prompts, options), 3);
        var block = new BlockDecodeOptions(4, 0.5, 4);
        var diffusion = DecodeCollector.Collect(BlockDecoder.Run(model, prompts, options, block, 271), 3);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(DecodeCollector.Collect(ArDecoder.Run(model, [prompts[i]], options[i]), 1)[0].Tokens, ar[i].Tokens);
            Assert.Equal(options[i].MaxNewTokens, ar[i].Tokens.Length);
            Assert.Equal(DecodeCollector.Collect(BlockDecoder.Run(model, [prompts[i]], options[i], block, 271), 1)[0].Tokens, diffusion[i].Tokens);
            Assert.Equal(options[i].MaxNewTokens, diffusion[i].Tokens.Length);
        }
    }
}

/// <summary>Decoders switch gradients off for their forwards only: the caller's mode holds between yielded steps.</summary>
public class DecoderGradientModeTests
{
    public DecoderGradientModeTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void GradientsStayOnForTheCallerBetweenStepsOfBothDecoders()
    {
        using var model = TinyConfigs.Model("llama", seed: 3);
        int[][] prompts = [[5, 9, 13]];
        var options = new DecodeOptions { MaxNewTokens = 6 };
        Assert.True(is_grad_enabled());
        var decoders = new[]
        {
            ArDecoder.Run(model, prompts, options),
            BlockDecoder.Run(model, prompts, options, new BlockDecodeOptions(4, 0.9), maskTokenId: model.Config.VocabSize - 1),
        };
        foreach (var steps in decoders)
        {
            var seen = 0;
            foreach (var _ in steps)
            {
                Assert.True(is_grad_enabled(), $"gradients were off for the caller after step {seen}");
                seen++;
            }
            Assert.True(seen > 1);
            Assert.True(is_grad_enabled());
        }
    }
}
