using Dllm.Attention;
using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Diffusion;

public class BlockDiffusionLossTests
{
    private const long Mask = 60;   // tiny configs have vocab 61; use the last id as MASK

    public BlockDiffusionLossTests() => TorchRuntime.EnsureLoaded();

    private static Tensor RandomTokens(long b, long l, ulong seed) =>
        randint(0, Mask, new[] { b, l }, generator: new Generator(seed), dtype: ScalarType.Int64);

    /// <summary>METHOD.md §2 done the slow way: one forward per block over [clean prefix ; noisy block].</summary>
    private static double NaiveLoss(CausalLM model, Tensor tokens, NoiseDraw draw, long blockSize)
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
                // Clean prefix blocks see clean blocks up to their own; the noisy block sees everything before it and itself.
                var logits = model.Forward(input, pos, AttentionMasks.BlockCausal(pos, pos, blockSize))[0].narrow(0, start, end - start);
                var target = tokens[s].narrow(0, start, end - start);
                var ce = nn.functional.cross_entropy(logits, target, reduction: nn.Reduction.None);
                var masked = draw.Masked[s].narrow(0, start, end - start);
                var rate = draw.Rate[s].narrow(0, start, end - start);
                total += (ce.where(masked, zeros_like(ce)) / rate).sum().item<float>();
            }
        return total / (b * l);
    }

    [Theory]
    [InlineData("llama", 1)]
    [InlineData("llama", 3)]   // last block is shorter
    [InlineData("qwen3", 4)]
    [InlineData("llada2", 2)]
    public void VectorisedLossEqualsNaivePerBlockLoop(string arch, long blockSize)
    {
        using var model = TinyConfigs.Model(arch, seed: 4);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(2, 8, 1);
        using var draw = NoiseSampler.Draw(tokens, blockSize, Mask, new Generator(9), new NoiseOptions());
        Assert.True(draw.Masked.any().item<bool>(), "the draw should mask something");
        using var result = BlockDiffusionLoss.Compute(model, new TokenBatch(tokens), blockSize, draw);
        var naive = NaiveLoss(model, tokens, draw, blockSize);
        Assert.Equal(naive, result.Loss.item<float>(), 1e-5);
    }

    [Fact]
    public void FullBlockUsesTheMdlmFormAndMatchesItsDefinition()
    {
        using var model = TinyConfigs.Model("qwen2", seed: 6);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(2, 6, 3);
        using var draw = NoiseSampler.Draw(tokens, 6, Mask, new Generator(5), new NoiseOptions());
        using var result = BlockDiffusionLoss.Compute(model, new TokenBatch(tokens), 6, draw);
        // MDLM: x_t alone, fully bidirectional, CE at masked positions / t, normalised by L.
        var logits = model.Forward(draw.Noisy, mask: AttentionMasks.Bidirectional(6, 6));
        var ce = nn.functional.cross_entropy(logits.reshape(12, -1), tokens.reshape(12), reduction: nn.Reduction.None).reshape(2, 6);
        var expected = ((ce.where(draw.Masked, zeros_like(ce)) / draw.Rate).sum() / 12).item<float>();
        Assert.Equal(expected, result.Loss.item<float>(), 1e-5);
        // And the naive per-block loop agrees: with one block there is no clean prefix at all.
        Assert.Equal(NaiveLoss(model, tokens, draw, 6), result.Loss.item<float>(), 1e-5);
    }

    [Fact]
    public void ConversionWeightsAMaskedTokenByOneOrByOneOverTAsAsked()
    {
        using var model = TinyConfigs.Model("llama", seed: 4);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(2, 8, 1);
        var schedule = Dllm.Training.BlockSchedule.Constant(10, 4);
        double LossWith(Dllm.Training.LossWeighting w) =>
            new Dllm.Training.BlockDiffusionObjective(schedule, (int)Mask, new NoiseOptions(), variant: new Dllm.Training.ConversionLoss(Weighting: w))
                .Compute(model, new TokenBatch(tokens), new Dllm.Training.ObjectiveContext(0, new Generator(9), 0)).Loss.item<float>();
        // The objective draws its noise from the context's generator: the same seed gives this draw.
        using var draw = NoiseSampler.Draw(tokens, 4, Mask, new Generator(9), new NoiseOptions());
        Assert.True(draw.Rate.lt(0.9).any().item<bool>(), "some block should be masked lightly, or 1 and 1/t could agree");
        Assert.Equal(NaiveLoss(model, tokens, draw, 4), LossWith(Dllm.Training.LossWeighting.Elbo), 1e-5);
        Assert.Equal(NaiveLoss(model, tokens, draw with { Rate = ones_like(draw.Rate) }, 4), LossWith(Dllm.Training.LossWeighting.Flat), 1e-5);
        Assert.Equal(Dllm.Training.LossWeighting.Flat, new Dllm.Training.ConversionLoss().Weighting);
        Assert.Equal(Dllm.Training.LossWeighting.Elbo, Dllm.Training.LossWeightings.Parse("elbo"));
        Assert.Throws<DllmException>(() => Dllm.Training.LossWeightings.Parse("sqrt"));
    }

    /// <summary>
    /// Noisy views of one clean batch (complementary masking's pair, DPO's ELBO samples) share one clean stream:
    /// the loss, per-token terms, logits and every gradient must equal the same views run as repeated rows.
    /// </summary>
    [Theory]
    [InlineData("llama", 4, "same", 2)]
    [InlineData("llama", 4, "shift", 2)]   // a block's first slot reads the clean stream, past every view
    [InlineData("qwen3", 3, "shift", 3)]   // last block shorter, three views
    [InlineData("llada2", 4, "same", 2)]
    [InlineData("llama", 10, "shift", 2)]  // one block: MDLM, nothing to share, the views are rows
    public void ViewsSharingOneCleanStreamEqualRepeatedRows(string arch, long blockSize, string labelName, int views)
    {
        var labels = LabelPositions.Parse(labelName);
        using var model = TinyConfigs.Model(arch, seed: 12);
        using var scope = NewDisposeScope();
        var tokens = RandomTokens(2, 10, 4);
        var docs = tensor(new long[] { 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }).view(2, 10);
        var scored = ones(2, 10, dtype: ScalarType.Bool);
        scored[0, TensorIndex.Slice(0, 3)] = false;   // a prompt that is never scored
        var batch = new TokenBatch(tokens, docs, scored);
        var repeated = new TokenBatch(tokens.repeat(views, 1), docs.repeat(views, 1), scored.repeat(views, 1));
        var maskable = BlockDiffusionLoss.Scorable(repeated, labels);
        using var draw = NoiseSampler.Draw(repeated.Tokens, blockSize, Mask, new Generator(7), new NoiseOptions { MinRate = 0.3 }, maskable);

        (float Loss, Tensor Terms, Tensor Logits, Tensor[] Grads) Run(TokenBatch b, int v)
        {
            model.zero_grad();
            using var r = BlockDiffusionLoss.Compute(model, b, blockSize, draw, labels, keepLogits: true, views: v);
            r.Loss.backward();
            return (r.Loss.item<float>(), r.Terms.detach().clone(), r.MaskedLogits!.detach().clone(),
                model.parameters().Select(p => p.grad!.clone()).ToArray());
        }
        var shared = Run(batch, views);
        var rows = Run(repeated, 1);
        Assert.Equal(rows.Loss, shared.Loss, 5);
        Assert.True(shared.Terms.allclose(rows.Terms, rtol: 1e-4, atol: 1e-5), "per-token terms differ");
        Assert.True(shared.Logits.allclose(rows.Logits, rtol: 1e-4, atol: 1e-4), "logits differ");
        for (var i = 0; i < rows.Grads.Length; i++)
            Assert.True(shared.Grads[i].allclose(rows.Grads[i], rtol: 1e-3, atol: 1e-6), $"gradient {i} differs");
        Assert.Throws<ArgumentException>(() => BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels, views: views + 1));
    }

    [Fact]
    public void RowsOfAGroupShareRatesAndCoinsButNotTheirMaskableSpan()
    {
        using var scope = NewDisposeScope();
        var tokens = RandomTokens(4, 64, 11);
        var maskable = ones(4, 64, dtype: ScalarType.Bool);
        maskable[1, TensorIndex.Slice(0, 8)] = false;   // row 1 has a longer prompt than its partner
        using var draw = NoiseSampler.Draw(tokens, 16, Mask, new Generator(3), new NoiseOptions(), maskable, rowsPerDraw: 2);
        Assert.True(draw.Rate[0].eq(draw.Rate[1]).all().item<bool>());
        Assert.True(draw.Rate[2].eq(draw.Rate[3]).all().item<bool>());
        Assert.False(draw.Rate[0].eq(draw.Rate[2]).all().item<bool>());
        Assert.True(draw.Masked[0].narrow(0, 8, 56).eq(draw.Masked[1].narrow(0, 8, 56)).all().item<bool>());
        Assert.False(draw.Masked[1].narrow(0, 0, 8).any().item<bool>());
        Assert.True(draw.Masked[2].eq(draw.Masked[3]).all().item<bool>());
        Assert.Throws<ArgumentException>(() => NoiseSampler.Draw(tokens, 16, Mask, new Generator(3), new NoiseOptions(), rowsPerDraw: 3));
    }

    [Fact]
    public void PerturbingOnePackedDocumentLeavesTheOthersUnchanged()
    {
        using var model = TinyConfigs.Model("llama", seed: 8);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(1, 12, 2);
        var docs = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2 }).unsqueeze(0);
        var changed = tokens.clone();
        changed[0, 6] = tensor(7L);           // inside document 1
        changed[0, 7] = tensor(11L);
        foreach (var blockSize in new long[] { 1, 4, 12 })
        {
            using var draw = NoiseSampler.Draw(tokens, blockSize, Mask, new Generator(1), new NoiseOptions { MinRate = 0.5 });
            using var draw2 = draw with { Noisy = changed.masked_fill(draw.Masked, Mask) };
            using var a = BlockDiffusionLoss.Compute(model, new TokenBatch(tokens, docs), blockSize, draw);
            using var b = BlockDiffusionLoss.Compute(model, new TokenBatch(changed, docs), blockSize, draw2);
            var outside = docs.ne(1);
            var diffOutside = (a.Terms - b.Terms).abs().masked_select(outside).max().item<float>();
            Assert.True(diffOutside < 1e-6, $"B={blockSize}: documents 0 and 2 moved by {diffOutside}");
            var inside = (a.Terms - b.Terms).abs().masked_select(docs.eq(1).logical_and(draw.Masked)).sum().item<float>();
            Assert.True(inside > 1e-4, $"B={blockSize}: document 1 itself should change");
        }
    }

    [Fact]
    public void NoiseDrawHasOneRatePerBlockAndNeverForcesAMask()
    {
        using var scope = NewDisposeScope();
        var tokens = zeros(new long[] { 64, 8 }, dtype: ScalarType.Int64);
        using var draw = NoiseSampler.Draw(tokens, 4, Mask, new Generator(3), new NoiseOptions());
        var rate = draw.Rate;
        Assert.True(rate.narrow(1, 0, 4).eq(rate.narrow(1, 0, 1)).all().item<bool>());
        Assert.True(rate.narrow(1, 4, 4).eq(rate.narrow(1, 4, 1)).all().item<bool>());
        Assert.True(rate.gt(1e-3).all().item<bool>() && rate.le(1).all().item<bool>());
        // With 128 blocks at rates near 0, some blocks must end up with no mask at all.
        using var low = NoiseSampler.Draw(tokens, 4, Mask, new Generator(3), new NoiseOptions { MinRate = 0.0, MaxRate = 0.05 });
        var perBlock = low.Masked.reshape(128, 4).any(1);
        Assert.False(perBlock.all().item<bool>());
        Assert.True(low.Noisy.eq(Mask).eq(low.Masked).all().item<bool>());
    }

    [Fact]
    public void EmbeddingNoiseOnlyTouchesMaskInputsAndIsOffAtZero()
    {
        using var model = TinyConfigs.Model("llama", seed: 8);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = RandomTokens(1, 8, 4);
        using var draw = NoiseSampler.Draw(tokens, 8, Mask, new Generator(2), new NoiseOptions { MinRate = 0.5 });
        var emb = model.Embed(draw.Noisy);
        var noisy = EmbeddingNoise.Apply(emb, draw.Noisy.eq(Mask), model.Embeddings.Weight, 0.1, new Generator(1));
        var moved = (noisy - emb).abs().sum(-1).gt(0);
        Assert.True(moved.eq(draw.Masked).all().item<bool>());
        Assert.Equal(0.0, EmbeddingNoise.Sigma(0.1, 100, 100));
        Assert.Equal(0.05, EmbeddingNoise.Sigma(0.1, 50, 100), 10);
    }
}
