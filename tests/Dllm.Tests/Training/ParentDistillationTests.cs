using Dllm.Attention;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.Training;

/// <summary>The conversion loss's pull towards the AR parent: KL(parent's next-token distribution || dLLM's slot).</summary>
public class ParentDistillationTests
{
    private const long Mask = 60;   // tiny configs have vocab 61; the last id is MASK

    public ParentDistillationTests() => TorchRuntime.EnsureLoaded();

    /// <summary>
    /// The vectorised term against a loop that asks the parent about each masked slot separately: the parent reads
    /// only the clean tokens of the slot's own document before it; slots that start a document count for nothing.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]   // complementary views share the clean rows: a slot of the second view maps back to its clean row
    public void TheParentTermEqualsALoopOverMaskedSlots(int views)
    {
        using var dllm = TinyConfigs.Model("llama", seed: 4);
        using var parent = TinyConfigs.Model("llama", seed: 5);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        const long b = 2, l = 8, block = 4;
        var tokens = randint(0, Mask, new[] { b, l }, generator: new Generator(1), dtype: ScalarType.Int64);
        var docs = tensor(new long[] { 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3 }).reshape(b, l);
        var batch = new TokenBatch(tokens, docs);
        var draw = NoiseSampler.Draw(tokens, block, Mask, new Generator(9), new NoiseOptions { MinRate = 0.5 });
        if (views == 2) draw = ComplementaryMasking.WithComplement(draw, tokens, ones_like(tokens, dtype: ScalarType.Bool));
        using var result = BlockDiffusionLoss.Compute(dllm, batch, block, draw, keepLogits: true, views: views);
        var (klSum, pairs) = BlockDiffusionObjective.ParentDivergence(parent, batch, result);

        double expected = 0;
        var counted = 0;
        var row = 0;   // index into MaskedLogits: the masked slots in row-major order of the view-major rows
        var masked = result.Masked;
        for (var r = 0; r < views * b; r++)
            for (var i = 0; i < l; i++)
            {
                if (!masked[r, i].item<bool>()) continue;
                var s = r % b;
                var doc = docs[s, i].item<long>();
                if (i > 0 && docs[s, i - 1].item<long>() == doc)
                {
                    var start = Enumerable.Range(0, i).First(j => docs[s, j].item<long>() == doc);
                    var before = tokens[s].narrow(0, start, i - start).unsqueeze(0);
                    var p = nn.functional.log_softmax(parent.Forward(before, mask: AttentionMasks.Causal(i - start))[0, -1], -1);
                    var q = nn.functional.log_softmax(result.MaskedLogits![row], -1);
                    expected += (p.exp() * (p - q)).sum().item<float>();
                    counted++;
                }
                row++;
            }
        Assert.Equal(result.MaskedLogits!.shape[0], row);
        Assert.True(counted > 3, "the draw should mask several slots with a predecessor");
        Assert.Equal(counted, (int)pairs.item<float>());
        Assert.Equal(expected, klSum.item<float>(), 1e-4);
    }

    /// <summary>The term trains the dLLM only: the parent's weights get no gradient, the loss grows and the mean KL is logged.</summary>
    [Fact]
    public void TheObjectiveAddsTheWeightedTermAndLeavesTheParentAlone()
    {
        using var dllm = TinyConfigs.Model("llama", seed: 4);
        using var parent = TinyConfigs.Model("llama", seed: 5);
        var tokens = randint(0, Mask, new[] { 2L, 8L }, generator: new Generator(1), dtype: ScalarType.Int64);
        var batch = new TokenBatch(tokens);
        var schedule = BlockSchedule.Constant(10, 4);
        ObjectiveResult Run(double weight) =>
            new BlockDiffusionObjective(schedule, (int)Mask, new NoiseOptions(), variant: new ConversionLoss(ParentWeight: weight), parent: parent)
                .Compute(dllm, batch, new ObjectiveContext(0, new Generator(9), 0));
        var plain = Run(0);
        Assert.Null(plain.Extra);
        var pulled = Run(0.5);
        var kl = pulled.Extra!["parent_kl"].item<float>();
        Assert.True(kl > 0);
        Assert.True(pulled.Loss.item<float>() > plain.Loss.item<float>() + 1e-4);
        pulled.Loss.backward();
        Assert.All(parent.parameters(), p => Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0));
        Assert.Contains(dllm.parameters(), p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
        Assert.Throws<DllmException>(() => new ConversionLoss(ParentWeight: -1).Validate());
    }
}
