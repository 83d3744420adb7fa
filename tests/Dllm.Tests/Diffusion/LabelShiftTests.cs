using Dllm.Attention;
using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Evaluation;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Diffusion;

/// <summary>Shifted labels in the objective and the evaluator (METHOD.md §2, token shift).</summary>
public class LabelShiftTests
{
    private const long Mask = 271;

    public LabelShiftTests() => TorchRuntime.EnsureLoaded();

    private static Tensor RandomTokens(long b, long l, ulong seed) =>
        randint(3, 250, new[] { b, l }, generator: new Generator(seed), dtype: ScalarType.Int64);

    /// <summary>
    /// The shifted loss the slow way: per block, one forward over [clean prefix ; noisy block] under the
    /// block-causal mask; token i is read from the output at i - 1, which lies in the clean prefix exactly
    /// when i starts its block. Position 0 has no predecessor and is not scored.
    /// </summary>
    private static double NaiveShiftedLoss(CausalLM model, Tensor tokens, NoiseDraw draw, long blockSize)
    {
        long b = tokens.shape[0], l = tokens.shape[1];
        double total = 0;
        for (var s = 0; s < b; s++)
            for (long start = 0; start < l; start += blockSize)
            {
                using var scope = NewDisposeScope();
                var end = Math.Min(l, start + blockSize);
                var input = cat([tokens[s].narrow(0, 0, start), draw.Noisy[s].narrow(0, start, end - start)]).unsqueeze(0);
                var pos = arange(end);
                var logits = model.Forward(input, pos, AttentionMasks.BlockCausal(pos, pos, blockSize))[0];
                for (var i = Math.Max(1, start); i < end; i++)
                {
                    if (!draw.Masked[s, i].item<bool>()) continue;
                    var ce = nn.functional.cross_entropy(logits[i - 1].unsqueeze(0), tokens[s, i].unsqueeze(0)).item<float>();
                    total += ce / draw.Rate[s, i].item<float>();
                }
            }
        return total / (b * (l - 1));
    }

    [Theory]
    [InlineData("llama", 1)]
    [InlineData("llama", 3)]   // last block is shorter
    [InlineData("qwen3", 4)]
    [InlineData("llada2", 2)]
    [InlineData("qwen2", 8)]   // one block: the MDLM form, read at i - 1
    public void VectorisedShiftedLossEqualsNaivePerBlockLoop(string arch, long blockSize)
    {
        using var model = TinyConfigs.Model(arch, seed: 4);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(2, 8, 1);
        var batch = new TokenBatch(tokens);
        using var draw = NoiseSampler.Draw(tokens, blockSize, Mask, new Generator(9), new NoiseOptions { MinRate = 0.3 }, BlockDiffusionLoss.Scorable(batch, LabelPosition.Shift));
        Assert.False(draw.Masked.select(1, 0).any().item<bool>(), "a token nobody predicts is never masked");
        using var result = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, LabelPosition.Shift);
        Assert.Equal(2 * 7, result.TokenCount.item<long>());
        Assert.Equal(NaiveShiftedLoss(model, tokens, draw, blockSize), result.Loss.item<float>(), 1e-5);
    }

    [Theory]
    [InlineData(4, LabelPosition.Shift)]
    [InlineData(5, LabelPosition.Shift)]
    [InlineData(16, LabelPosition.Shift)]
    [InlineData(4, LabelPosition.Same)]
    public void ThePredictionOfAMaskedTokenNeverMovesWhenThatTokenChanges(long blockSize, LabelPosition labels)
    {
        // Leak test: change a masked token in the clean sequence (the noisy copy holds MASK there either way);
        // the logits that predict it must not move, at a block's first slot and inside a block alike.
        using var model = TinyConfigs.Model("llama", seed: 5);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(1, 16, 3);
        var docs = tensor(new long[] { 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }).unsqueeze(0);
        var batch = new TokenBatch(tokens, docs);
        using var draw = NoiseSampler.Draw(tokens, blockSize, Mask, new Generator(2), new NoiseOptions { MinRate = 0.6 }, BlockDiffusionLoss.Scorable(batch, labels));
        using var before = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels, keepLogits: true);
        var checkedSlots = 0;
        for (var i = 0; i < 16; i++)
        {
            if (!before.Masked[0, i].item<bool>()) continue;
            var row = checkedSlots;   // MaskedLogits holds the masked positions in order
            var changed = tokens.clone();
            changed[0, i] = tensor((tokens[0, i].item<long>() + 17) % 250 + 3);
            using var after = BlockDiffusionLoss.Compute(model, new TokenBatch(changed, docs), blockSize, draw, labels, keepLogits: true);
            var moved = (after.MaskedLogits![row] - before.MaskedLogits![row]).abs().max().item<float>();
            Assert.True(moved == 0, $"B={blockSize} {labels}: the prediction for position {i} moved by {moved} when its own token changed");
            checkedSlots++;
        }
        Assert.True(checkedSlots >= 6, $"only {checkedSlots} masked positions were checked");
        if (labels == LabelPosition.Shift)
        {
            // A document's first token (positions 0 and 6) has no predecessor in its document: never masked, never scored.
            Assert.False(draw.Masked[0, 0].item<bool>() || draw.Masked[0, 6].item<bool>());
            Assert.Equal(14, before.TokenCount.item<long>());
        }
    }

    [Fact]
    public void ShiftedLabelsReadTheNextTokenHeadSoAnArModelScoresItsOwnNllAtBlockOne()
    {
        // With B = 1 every token starts its block: the shifted loss reads the clean stream at i - 1 under the
        // causal mask, i.e. the AR model's next-token prediction. With every token masked (rate 1) and weight 1,
        // the loss is the AR model's NLL exactly.
        using var model = TinyConfigs.Model("qwen2", seed: 7);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(1, 10, 4);
        var masked = arange(10).ge(1).unsqueeze(0);
        using var draw = new NoiseDraw(tokens.masked_fill(masked, Mask), masked, ones(1, 10), Mask);
        using var result = BlockDiffusionLoss.Compute(model, new TokenBatch(tokens), 1, draw, LabelPosition.Shift);
        var ar = ArNllEvaluator.Evaluate(model, [new ScoredDocument(tokens[0].data<long>().Select(t => (int)t).ToArray(), Enumerable.Repeat(true, 10).ToArray())]);
        Assert.Equal(ar.PerToken, result.Loss.item<float>(), 1e-5);
    }

    [Fact]
    public void ShiftedNelboCountsEveryScoredTokenButTheFirst()
    {
        using var model = TinyConfigs.Model("llama", seed: 3);
        var doc = new ScoredDocument(Enumerable.Range(0, 30).Select(i => (i * 7 + 5) % 250).ToArray(), Enumerable.Repeat(true, 30).ToArray());
        var shifted = NelboEvaluator.Evaluate(model, [doc], 8, (int)Mask, LabelPosition.Shift, 2, seed: 9);
        Assert.Equal(29, shifted.Tokens);
        var withBos = doc with { Scored = doc.Scored.Select((_, i) => i > 0).ToArray() };
        Assert.Equal(29, NelboEvaluator.Evaluate(model, [withBos], 8, (int)Mask, LabelPosition.Shift, 2, seed: 9).Tokens);
        Assert.Equal(29, NelboEvaluator.Evaluate(model, [withBos], 8, (int)Mask, LabelPosition.Same, 2, seed: 9).Tokens);
    }

    [Fact]
    public void LabelsRoundTripThroughConfigJsonAndDefaultToSamePosition()
    {
        var config = TinyConfigs.Config("llama") with { Diffusion = new DiffusionSettings(8, LabelPosition.Shift) };
        var json = ModelConfigWriter.ToJson(config);
        Assert.Equal("shift", (string)json["dllm"]!["labels"]!);
        Assert.Equal(new DiffusionSettings(8, LabelPosition.Shift), ModelConfigReader.Read(json.ToJsonString(), "t").Diffusion);
        json["dllm"]!.AsObject().Remove("labels");
        Assert.Equal(LabelPosition.Same, ModelConfigReader.Read(json.ToJsonString(), "t").Diffusion!.Labels);
        json["dllm"]!["labels"] = "left";
        Assert.Contains("dllm.labels", Assert.Throws<DllmException>(() => ModelConfigReader.Read(json.ToJsonString(), "t")).Message);
    }
}
