using Dllm.Data;
using Dllm.Diffusion;
using Dllm.FineTuning;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.FineTuning;

public class SftObjectiveTests
{
    private const int Mask = 271, Eos = 263;

    public SftObjectiveTests() => TorchRuntime.EnsureLoaded();

    private static TokenBatch Batch() => SftBatchSource.Pack(
    [
        ([5, 6, 7, 8, 9], [40, 41, 42, 43, 44, 45, 46]),
        ([10, 11], [50, 51, 52]),
        ([12, 13, 14, 15, 16, 17, 18, 19, 20], [60, 61]),
    ], blockSize: 4, padId: Eos, CPU);

    [Fact]
    public void RowsArePaddedWithEosToABlockMultipleAndOnlyResponsesAreScored()
    {
        using var b = Batch();
        Assert.Equal(new long[] { 3, 12 }, b.Tokens.shape);
        var row1 = b.Tokens[1].data<long>().ToArray();
        Assert.Equal(new long[] { 10, 11, 50, 51, 52, Eos, Eos, Eos, Eos, Eos, Eos, Eos }, row1);
        Assert.Equal(Enumerable.Range(0, 12).Select(j => j >= 2), b.Scored![1].data<bool>().ToArray());
    }

    [Fact]
    public void PromptTokensAreNeverMaskedAndCarryNoLoss()
    {
        using var model = TinyConfigs.Model("llada2", seed: 2);
        using var b = Batch();
        for (var seed = 0UL; seed < 20; seed++)
        {
            using var scope = NewDisposeScope();
            using var draw = NoiseSampler.Draw(b.Tokens, 4, Mask, new Generator(seed), new NoiseOptions { MinRate = 0.3, MaxRate = 0.8 }, b.Scored);
            Assert.False(draw.Masked.logical_and(b.Scored!.logical_not()).any().item<bool>());
            Assert.True(draw.Noisy.masked_select(b.Scored.logical_not()).eq(b.Tokens.masked_select(b.Scored.logical_not())).all().item<bool>());
            using var result = BlockDiffusionLoss.Compute(model, b, 4, draw);
            Assert.Equal(0f, result.Terms.masked_select(b.Scored.logical_not()).abs().sum().item<float>());
            Assert.InRange(draw.Rate.masked_select(b.Scored).min().item<float>(), 0.3f, 0.8f);
        }
    }

    [Fact]
    public void AComplementaryPairCoversEveryResponseTokenExactlyOnce()
    {
        using var b = Batch();
        using var draw = NoiseSampler.Draw(b.Tokens, 4, Mask, new Generator(3), new NoiseOptions { MinRate = 0.3, MaxRate = 0.8 }, b.Scored);
        using var both = ComplementaryMasking.WithComplement(draw, b.Tokens, b.Scored!);
        var first = both.Masked.narrow(0, 0, 3);
        var second = both.Masked.narrow(0, 3, 3);
        Assert.True(first.logical_xor(second).eq(b.Scored!).all().item<bool>());
        Assert.False(first.logical_and(second).any().item<bool>());
        Assert.True((both.Rate.narrow(0, 3, 3) + both.Rate.narrow(0, 0, 3)).sub(1).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void CapTermEqualsANaiveLoopOverPositions()
    {
        var logits = randn(new long[] { 2, 5, 7 }, generator: new Generator(1)) * 3;
        var targets = logits.argmax(-1).clone();
        targets[0, 1] = tensor((targets[0, 1].item<long>() + 1) % 7);   // one wrong prediction
        var masked = tensor(new[] { true, true, false, true, true, false, true, true, false, false }).reshape(2, 5);
        var at = masked.reshape(-1).nonzero().squeeze(1);
        var fast = ConfidenceLoss.Compute(logits.reshape(10, 7).index_select(0, at), targets.masked_select(masked)).item<float>();
        double sum = 0;
        var count = 0;
        for (var i = 0; i < 2; i++)
            for (var j = 0; j < 5; j++)
            {
                var row = logits[i, j].data<float>().Select(x => (double)x).ToArray();
                var argmax = Array.IndexOf(row, row.Max());
                if (!masked[i, j].item<bool>() || argmax != targets[i, j].item<long>()) continue;
                var z = row.Select(x => Math.Exp(x - row.Max())).ToArray();
                var p = z.Select(x => x / z.Sum()).ToArray();
                sum += -p.Sum(x => x * Math.Log(x));
                count++;
            }
        Assert.Equal(5, count);
        Assert.Equal(sum / count, fast, 5);
    }

    [Fact]
    public void CapWithWeightZeroIsPlainSftAndAPositiveWeightAddsTheTerm()
    {
        using var model = TinyConfigs.Model("llada2", seed: 4);
        using var b = Batch();
        var plain = new SftObjective(new SftSettings(4), Mask).Loss(model, b, new Generator(7)).Loss.item<float>();
        var zero = new SftObjective(new SftSettings(4, CapWeight: 0), Mask).Loss(model, b, new Generator(7)).Loss.item<float>();
        var cap = new SftObjective(new SftSettings(4, CapWeight: 2.0), Mask).Loss(model, b, new Generator(7)).Loss.item<float>();
        Assert.Equal(plain, zero);
        Assert.True(cap >= plain);
    }
}
