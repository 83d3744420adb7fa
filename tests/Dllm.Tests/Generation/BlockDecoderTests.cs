using Dllm.Attention;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

public class BlockDecoderTests
{
    private const int Mask = 271;

    public BlockDecoderTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Random weights with a large scale, so confidences spread over (0, 1] and thresholds matter.</summary>
    private static CausalLM Peaky(string arch = "llada2", long seed = 3)
    {
        var model = TinyConfigs.Model(arch, seed);
        using var noGrad = no_grad();
        model.OutputWeight.mul_(12);
        return model;
    }

    private static IReadOnlyList<DecodedSequence> Decode(CausalLM model, int[][] prompts, BlockDecodeOptions block, int maxNew = 12, int[]? stops = null) =>
        DecodeCollector.Collect(BlockDecoder.Run(model, prompts, new DecodeOptions { MaxNewTokens = maxNew, StopTokenIds = stops ?? [] }, block, Mask), prompts.Length);

    /// <summary>
    /// LLaDA2.0's reference generate, transcribed: batch 1, the whole canvas recomputed every step under
    /// the block-lower-triangular mask, blocks at absolute multiples of B, strict threshold, the
    /// B / steps transfer schedule, stop after the block that holds EOS.
    /// </summary>
    private static List<int> Reference(CausalLM model, int[] prompt, int b, double threshold, int steps, int genLength, int eos) =>
        Reference(model, prompt, b, threshold, steps, genLength, eos, out _);

    private static List<int> Reference(CausalLM model, int[] prompt, int b, double threshold, int steps, int genLength, int eos, out int forwards, bool shift = false)
    {
        using var noGrad = no_grad();
        forwards = 0;
        var p = prompt.Length;
        var blocks = (p + genLength + b - 1) / b;
        var x = prompt.Concat(Enumerable.Repeat(Mask, blocks * b - p)).ToArray();
        steps = Math.Min(steps, genLength);
        var num = Enumerable.Range(0, steps).Select(s => b / steps + (s < b % steps ? 1 : 0)).ToArray();
        for (var nb = p / b; nb < blocks; nb++)
        {
            var end = (nb + 1) * b;
            for (var step = 0; step < steps; step++)
            {
                var active = Enumerable.Range(end - b, b).Where(i => x[i] == Mask).ToList();
                if (active.Count == 0) break;
                using var scope = NewDisposeScope();
                forwards++;
                var pos = arange(end);
                var logits = model.Forward(tensor(x.Take(end).Select(v => (long)v).ToArray()).unsqueeze(0), pos, AttentionMasks.BlockCausal(pos, pos, b))[0];
                // Shifted labels: slot i is predicted by the output at i - 1 (the canvas recomputation makes
                // the output at a block's first slot - 1 the clean one, since it cannot see the block).
                if (shift) logits = cat([logits.narrow(0, 0, 1), logits.narrow(0, 0, end - 1)]);
                logits.select(-1, Mask).fill_(float.NegativeInfinity);
                var probs = logits.softmax(-1);
                var (pv, pi) = probs.max(-1);
                var conf = pv.data<float>().ToArray();
                var x0 = pi.data<long>().ToArray();
                var high = active.Where(i => conf[i] > threshold).ToList();
                var transfer = high.Count >= num[step] && high.Count > 0 ? high
                    : active.OrderByDescending(i => conf[i]).ThenBy(i => i).Take(Math.Max(1, Math.Min(num[step], active.Count))).ToList();
                foreach (var i in transfer) x[i] = (int)x0[i];
            }
            if (x.Skip(p).Take(end - p).Contains(eos)) break;
        }
        var generated = x.Skip(p).Take(genLength).ToList();
        var at = generated.IndexOf(eos);
        return at >= 0 ? generated.Take(at).ToList() : generated;
    }

    [Theory]
    [InlineData(4, 0.95, 4)]
    [InlineData(4, 0.3, 4)]
    [InlineData(8, 0.5, 3)]
    [InlineData(1, 0.9, 32)]
    [InlineData(3, 0.0, 32)]
    public void CachedDecodingMatchesTheReferenceGenerate(int b, double threshold, int steps)
    {
        using var model = Peaky();
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16], [20]];
        var eos = 263;
        foreach (var prompt in prompts)
        {
            var expected = Reference(model, prompt, b, threshold, steps, 13, eos);
            var cached = Decode(model, [prompt], new BlockDecodeOptions(b, threshold, steps), 13, [eos])[0].Tokens;
            var uncached = Decode(model, [prompt], new BlockDecodeOptions(b, threshold, steps, UseCache: false), 13, [eos])[0].Tokens;
            Assert.Equal(expected, cached);
            Assert.Equal(expected, uncached);
        }
    }

    [Theory]
    [InlineData(4, 0.95, 4)]
    [InlineData(4, 0.3, 4)]
    [InlineData(8, 0.5, 3)]
    [InlineData(1, 0.9, 32)]
    [InlineData(3, 0.0, 32)]
    public void ShiftedDecodingMatchesTheShiftedReferenceAtEveryBlockEdge(int b, double threshold, int steps)
    {
        using var model = TinyConfigs.Shifted("qwen3", seed: 3, blockSize: b);
        using (no_grad()) model.OutputWeight.mul_(12);
        // Prompt lengths 8 and 12 end on a block boundary for b = 4 (slot 0 of the first window is read from the
        // prefill's last output); 3 and 1 leave a tail that shares the first block.
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16], [20], [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41]];
        var eos = 263;
        foreach (var prompt in prompts)
        {
            var expected = Reference(model, prompt, b, threshold, steps, 13, eos, out _, shift: true);
            Assert.Equal(expected, Decode(model, [prompt], new BlockDecodeOptions(b, threshold, steps), 13, [eos])[0].Tokens);
            Assert.Equal(expected, Decode(model, [prompt], new BlockDecodeOptions(b, threshold, steps, UseCache: false), 13, [eos])[0].Tokens);
        }
        var batch = Decode(model, prompts, new BlockDecodeOptions(b, threshold, steps), 13, [eos]);
        for (var i = 0; i < prompts.Length; i++)
            Assert.Equal(Reference(model, prompts[i], b, threshold, steps, 13, eos, out _, shift: true), batch[i].Tokens);
    }

    [Fact]
    public void AShiftedModelAtBlockOneDecodesExactlyAsItsArSelf()
    {
        // B = 1 with shifted labels is autoregression with the next-token head: the same greedy tokens as ArDecoder.
        using var model = TinyConfigs.Shifted("llama", seed: 5, blockSize: 1);
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13], [20]];
        var options = new DecodeOptions { MaxNewTokens = 10 };
        var ar = DecodeCollector.Collect(ArDecoder.Run(model, prompts, options), 3);
        var diffusion = DecodeCollector.Collect(BlockDecoder.Run(model, prompts, options, new BlockDecodeOptions(1, 0.9, 1), Mask), 3);
        for (var i = 0; i < 3; i++) Assert.Equal(ar[i].Tokens, diffusion[i].Tokens);
    }

    [Fact]
    public void AShiftedModelRefusesAnEmptyPrompt()
    {
        using var model = TinyConfigs.Shifted("llama");
        var e = Assert.Throws<DllmException>(() => Decode(model, [[]], new BlockDecodeOptions(4, 0.9, 4)));
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void ABlockEndsOnceItsOutputIsFixedWithTheReferenceTokensAndFewerForwards()
    {
        using var model = Peaky(seed: 4);
        int[] prompt = [9, 10, 11, 12, 13, 14, 15, 16];
        // Threshold 1: one slot per forward, in confidence order, so the reference spends a forward on every
        // slot of the last block, including those after the stop token and past the token limit.
        var block = new BlockDecodeOptions(8, 1.0, 8);
        var freeSteps = BlockDecoder.Run(model, [prompt], new DecodeOptions { MaxNewTokens = 16 }, block, Mask).ToList();
        var free = DecodeCollector.Collect(freeSteps, 1)[0].Tokens;
        // The forward at which every one of the first `wanted` slots of the second block was decided.
        int DecidedBy(int wanted) => freeSteps.Where(s => s.Updates.Any(u => u.Positions.Any(p => p >= 8 && p < 8 + wanted))).Max(s => s.Forward);

        var limited = Reference(model, prompt, 8, 1.0, 8, 11, eos: -1, out var limitedReference);
        var limitedSteps = BlockDecoder.Run(model, [prompt], new DecodeOptions { MaxNewTokens = 11 }, block, Mask).ToList();
        var result = DecodeCollector.Collect(limitedSteps, 1)[0];
        Assert.Equal(limited, result.Tokens);
        Assert.Equal(FinishReason.Length, result.Finish);
        Assert.Equal(16, limitedReference);
        Assert.Equal(DecidedBy(3), limitedSteps.Max(s => s.Forward));
        Assert.True(DecidedBy(3) < 16, string.Join(" ", freeSteps.SelectMany(s => s.Updates).SelectMany(u => u.Positions)));

        // A stop token inside the second block: the block ends once it and every slot before it are decided.
        var j = Enumerable.Range(0, 7).First(k => Array.IndexOf(free, free[8 + k]) == 8 + k && DecidedBy(k + 1) < 16);
        var stop = free[8 + j];
        var expected = Reference(model, prompt, 8, 1.0, 8, 16, stop, out var stopReference);
        var stopped = BlockDecoder.Run(model, [prompt], new DecodeOptions { MaxNewTokens = 16, StopTokenIds = [stop] }, block, Mask).ToList();
        var stoppedResult = DecodeCollector.Collect(stopped, 1)[0];
        Assert.Equal(expected, stoppedResult.Tokens);
        Assert.Equal(FinishReason.Stop, stoppedResult.Finish);
        Assert.Equal(16, stopReference);
        Assert.Equal(DecidedBy(j + 1), stopped.Max(s => s.Forward));
    }

    [Theory]
    [InlineData("llada2")]
    [InlineData("qwen3")]
    public void ABatchEqualsEachPromptAlone(string arch)
    {
        using var model = Peaky(arch);
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16, 17], [20], [30, 31, 32, 33]];
        var block = new BlockDecodeOptions(4, 0.4, 4);
        var batch = Decode(model, prompts, block, 14, [263]);
        for (var i = 0; i < prompts.Length; i++)
            Assert.Equal(Decode(model, [prompts[i]], block, 14, [263])[0].Tokens, batch[i].Tokens);
    }

    [Fact]
    public void ThresholdOneUnmasksExactlyOneTokenPerStep()
    {
        using var model = Peaky();
        var steps = BlockDecoder.Run(model, [[5, 6, 7]], new DecodeOptions { MaxNewTokens = 9 }, new BlockDecodeOptions(4, 1.0, 32), Mask).ToList();
        var decoding = steps.SelectMany(s => s.Updates).Where(u => u.Finished is null).ToList();
        Assert.All(decoding, u => Assert.Single(u.Positions));
        var result = DecodeCollector.Collect(steps, 1)[0];
        // Prompt of 3 with B = 4: the first block has one MASK, then blocks of 4 until 9 tokens are covered.
        Assert.Equal(9, result.Tokens.Length);
        Assert.Equal(1 + 4 + 4, steps.Max(s => s.Forward));
    }

    [Fact]
    public void BlockSizeOneTakesOneForwardPerToken()
    {
        using var model = Peaky();
        var steps = BlockDecoder.Run(model, [[5, 6, 7]], new DecodeOptions { MaxNewTokens = 7 }, new BlockDecodeOptions(1, 0.0, 32), Mask).ToList();
        Assert.Equal(7, DecodeCollector.Collect(steps, 1)[0].Tokens.Length);
        Assert.Equal(7, steps.Max(s => s.Forward));
    }

    [Fact]
    public void ZeroThresholdDecodesAWholeBlockPerForward()
    {
        using var model = Peaky();
        var steps = BlockDecoder.Run(model, [[5, 6, 7, 8]], new DecodeOptions { MaxNewTokens = 16 }, new BlockDecodeOptions(8, 0.0, 32), Mask).ToList();
        Assert.Equal(16, DecodeCollector.Collect(steps, 1)[0].Tokens.Length);
        Assert.Equal(3, steps.Max(s => s.Forward));   // 4 MASKs sharing the prompt's block, then two full blocks
    }

    [Fact]
    public void EosInTheMiddleOfABlockDropsWhatFollowsAndStopsAfterThatBlock()
    {
        using var model = Peaky();
        var block = new BlockDecodeOptions(4, 0.95, 4);
        var free = Decode(model, [[5, 6, 7, 8]], block, 12)[0].Tokens;
        // Use the token at generated position 5 (the middle of the second block) as the stop token.
        var stop = free[5];
        var firstAt = Array.IndexOf(free, stop);
        var steps = BlockDecoder.Run(model, [[5, 6, 7, 8]], new DecodeOptions { MaxNewTokens = 12, StopTokenIds = [stop] }, block, Mask).ToList();
        var result = DecodeCollector.Collect(steps, 1)[0];
        Assert.Equal(FinishReason.Stop, result.Finish);
        Assert.Equal(free.Take(firstAt), result.Tokens);
        var blockOfStop = firstAt / 4;
        Assert.DoesNotContain(steps.SelectMany(s => s.Updates), u => u.Positions.Any(p => p >= (blockOfStop + 1) * 4));
    }

    [Fact]
    public void LowerThresholdsNeverNeedMoreForwardsOnAFixedSet()
    {
        using var model = Peaky();
        int[][] prompts = [[5, 6, 7], [40, 41, 42, 43, 44], [100], [7, 7, 7, 7, 7, 7, 7, 7]];
        var previous = int.MaxValue;
        foreach (var threshold in new[] { 1.0, 0.95, 0.9, 0.7, 0.5, 0.2, 0.0 })
        {
            var forwards = prompts.Sum(p => BlockDecoder.Run(model, [p], new DecodeOptions { MaxNewTokens = 16 }, new BlockDecodeOptions(8, threshold, 8), Mask).Max(s => s.Forward));
            Assert.True(forwards <= previous, $"threshold {threshold} took {forwards} forwards, more than {previous}");
            previous = forwards;
        }
    }

    [Fact]
    public void PromptThatLeavesNoRoomForABlockIsAClearError()
    {
        using var model = Peaky();
        var prompt = Enumerable.Repeat(5, 128).ToArray();   // context 128: the whole context is prompt
        var e = Assert.Throws<DllmException>(() => BlockDecoder.Run(model, [prompt], new DecodeOptions(), new BlockDecodeOptions(64), Mask).ToList());
        Assert.Contains("context", e.Message);
    }

    [Fact]
    public void TransferScheduleCommitsEveryMaskWithinTheStepLimit()
    {
        var o = new BlockDecodeOptions(32, 0.95, 8);
        Assert.Equal(32, Enumerable.Range(0, 8).Sum(o.MinimumTransfers));
        var o2 = new BlockDecodeOptions(5, 0.95, 3);
        Assert.Equal(new[] { 2, 2, 1 }, Enumerable.Range(0, 3).Select(o2.MinimumTransfers));
        var undecided = new[] { true, false, true, true };
        float[] conf = [0.2f, 0.99f, 0.97f, 0.5f];
        Assert.Equal(new[] { 2 }, BlockDecoder.SelectTransfers(undecided, conf, new BlockDecodeOptions(4, 0.95, 4), 0));
        Assert.Equal(new[] { 2, 3 }, BlockDecoder.SelectTransfers(undecided, conf, new BlockDecodeOptions(4, 0.95, 2), 0));
        Assert.Equal(new[] { 3 }, BlockDecoder.SelectTransfers([true, false, false, true], [0.2f, 0f, 0f, 0.5f], new BlockDecodeOptions(4, 0.95, 4), 0));
    }
}

public class DecodingRuleTests
{
    private const int Mask = 271;

    public DecodingRuleTests() => TorchRuntime.EnsureLoaded();

    private static CausalLM Peaky(long seed = 3)
    {
        var model = TinyConfigs.Model("llada2", seed);
        using var noGrad = no_grad();
        model.OutputWeight.mul_(12);
        return model;
    }

    private static List<DecodeStep> Run(CausalLM model, int[][] prompts, BlockDecodeOptions block, int[] stops) =>
        BlockDecoder.Run(model, prompts, new DecodeOptions { MaxNewTokens = 16, StopTokenIds = stops }, block, Mask).ToList();

    [Fact]
    public void CreditWithZeroAlphaIsThePlainThresholdRule()
    {
        using var model = Peaky();
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16, 17], [20]];
        var plain = Run(model, prompts, new BlockDecodeOptions(8, 0.6, 8), [263]);
        var credit = Run(model, prompts, new BlockDecodeOptions(8, 0.6, 8, Credit: new CreditOptions(Alpha: 0)), [263]);
        Assert.Equal(DecodeCollector.Collect(plain, 3).Select(d => d.Tokens), DecodeCollector.Collect(credit, 3).Select(d => d.Tokens));
        Assert.Equal(plain.Max(s => s.Forward), credit.Max(s => s.Forward));
    }

    [Fact]
    public void CreditAccumulatesDecayedTopProbabilitiesOnMaskedSlotsOnly()
    {
        using var ledger = new CreditLedger(new CreditOptions(Alpha: 0.7, Boost: 0.2, Decay: 0.8));
        ledger.StartBlock();
        // One row, two slots, vocabulary of 3; slot 1 is not masked and earns nothing.
        var logits = tensor(new float[] { 2, 0, 0, 0, 1, 0 }, [1, 2, 3]);
        var masked = tensor(new[] { true, false }, [1, 2]);
        var rows = tensor(new long[] { 0 });
        var p0 = Math.Exp(2) / (Math.Exp(2) + 2);
        var first = ledger.Fuse(logits, masked, rows, 1, 0);
        Assert.Equal(2 + 0.7 * Math.Log(1 + Math.Pow(p0, 0.2)), first[0, 0, 0].item<float>(), 5);
        Assert.Equal(0, first[0, 0, 1].item<float>(), 6);
        Assert.Equal(1, first[0, 1, 1].item<float>(), 6);
        var second = ledger.Fuse(logits, masked, rows, 1, 1);
        Assert.Equal(2 + 0.7 * Math.Log(1 + 0.8 * Math.Pow(p0, 0.2) + Math.Pow(p0, 0.2)), second[0, 0, 0].item<float>(), 5);
        ledger.StartBlock();   // a new block starts from no credit
        Assert.Equal(first[0, 0, 0].item<float>(), ledger.Fuse(logits, masked, rows, 1, 0)[0, 0, 0].item<float>(), 6);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void RulesGiveTheSameTokensCachedAndUncachedAndBatched(bool stopFill, bool credit)
    {
        using var model = Peaky(5);
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16, 17], [20], [30, 31, 32, 33]];
        var free = DecodeCollector.Collect(Run(model, prompts, new BlockDecodeOptions(8, 0.5, 8), []), 4);
        var stop = free[0].Tokens[3];   // a token the model emits, so some rows stop mid-block
        var rules = new BlockDecodeOptions(8, 0.5, 8, StopFill: stopFill, Credit: credit ? new CreditOptions() : null);
        var cached = DecodeCollector.Collect(Run(model, prompts, rules, [stop]), 4);
        var uncached = DecodeCollector.Collect(Run(model, prompts, rules with { UseCache = false }, [stop]), 4);
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(cached[i].Tokens, uncached[i].Tokens);
            Assert.Equal(DecodeCollector.Collect(Run(model, [prompts[i]], rules, [stop]), 1)[0].Tokens, cached[i].Tokens);
        }
    }

    [Fact]
    public void StopFillNeverSpendsAForwardOnASlotAfterADecidedStopToken()
    {
        using var model = Peaky(4);
        int[] prompt = [9, 10, 11, 12, 13, 14, 15, 16];
        // Threshold 1: one slot per forward, so a forward spent on a slot after the stop token is visible.
        var plainBlock = new BlockDecodeOptions(8, 1.0, 8);
        var free = DecodeCollector.Collect(Run(model, [prompt], plainBlock, []), 1)[0].Tokens;
        // A token of the second block, first emitted there, after which the plain rule still decides a later slot.
        var candidates = Enumerable.Range(8, 7).Where(j => Array.IndexOf(free, free[j]) == j)
            .Where(j => SpendsAfterStop(Run(model, [prompt], plainBlock, [free[j]]), free[j])).ToList();
        Assert.NotEmpty(candidates);
        foreach (var j in candidates)
        {
            var steps = Run(model, [prompt], plainBlock with { StopFill = true }, [free[j]]);
            Assert.False(SpendsAfterStop(steps, free[j]), $"stop token at {j}: a forward went to a later slot");
            var result = DecodeCollector.Collect(steps, 1)[0];
            Assert.Equal(FinishReason.Stop, result.Finish);
        }
    }

    /// <summary>Whether some step decided a position after a stop token already decided.</summary>
    private static bool SpendsAfterStop(List<DecodeStep> steps, int stop)
    {
        var firstStop = int.MaxValue;
        foreach (var u in steps.SelectMany(s => s.Updates))
        {
            if (u.Positions.Any(p => p > firstStop)) return true;
            for (var i = 0; i < u.Positions.Length; i++)
                if (u.Tokens[i] == stop) firstStop = Math.Min(firstStop, u.Positions[i]);
        }
        return false;
    }
}
