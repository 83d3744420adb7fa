using Dllm.FineTuning;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.FineTuning;

public class DpoObjectiveTests
{
    private const int Mask = 271, Eos = 263;

    public DpoObjectiveTests() => TorchRuntime.EnsureLoaded();

    private static Dllm.Data.TokenBatch Pair() => SftBatchSource.Pack(
        [([5, 6, 7], [40, 41, 42, 43]), ([5, 6, 7], [90, 91, 92, 93])], blockSize: 4, padId: Eos, CPU);

    [Fact]
    public void LossIsLogTwoWhenPolicyEqualsReference()
    {
        using var model = TinyConfigs.Model("llada2", seed: 5);
        using var reference = TinyConfigs.Model("llada2", seed: 5);
        using var batch = Pair();
        var (loss, margins) = new DpoObjective(reference, new DpoSettings(Beta: 0.5, ElboSamples: 3, BlockSize: 4), Mask).Loss(model, batch, new Generator(2));
        Assert.Equal(Math.Log(2), loss.item<float>(), 5);
        Assert.Equal(0f, margins.abs().max().item<float>(), 5);
    }

    [Fact]
    public void ChosenNllTermScalesWithItsWeightAndIgnoresTheRejectedResponse()
    {
        using var model = TinyConfigs.Model("llada2", seed: 5);
        using var reference = TinyConfigs.Model("llada2", seed: 5);
        using var noGrad = no_grad();
        float Loss(double weight, int[] rejected)
        {
            using var batch = SftBatchSource.Pack([([5, 6, 7], [40, 41, 42, 43]), ([5, 6, 7], rejected)], blockSize: 4, padId: Eos, CPU);
            var settings = new DpoSettings(Beta: 0.5, ElboSamples: 3, BlockSize: 4, ChosenNllWeight: weight);
            return new DpoObjective(reference, settings, Mask).Loss(model, batch, new Generator(2)).Loss.item<float>();
        }
        var nll = Loss(1, [90, 91, 92, 93]) - Math.Log(2);   // policy == reference: the DPO part is log 2
        Assert.True(nll > 0.1, $"NLL term {nll}");
        Assert.Equal(2 * nll, Loss(2, [90, 91, 92, 93]) - Math.Log(2), 4);
        // Draws are shared by position, not by content, so another rejected answer leaves the chosen NLL alone.
        Assert.Equal(nll, Loss(1, [11, 12, 13, 14]) - Math.Log(2), 4);
        Assert.Equal(Math.Log(2), Loss(0, [11, 12, 13, 14]), 5);
    }

    [Fact]
    public void WithoutPaddingTheElboCountsOnlyTheResponse()
    {
        // Rates near 1 mask every response and padding slot, so the contexts are the same whatever the padding holds;
        // then only a counted padding target can move the loss.
        using var model = TinyConfigs.Model("llada2", seed: 5);
        using var reference = TinyConfigs.Model("llada2", seed: 5);
        using var noGrad = no_grad();
        float Nll(bool scorePadding, int padId)
        {
            using var batch = SftBatchSource.Pack([([5, 6, 7], [40, 41]), ([5, 6, 7], [90, 91, 92, 93])], blockSize: 4, padId: padId, CPU);
            Assert.Equal(3 + 1, batch.Padding!.sum().item<long>());   // the chosen row's 3 and the rejected row's 1
            var settings = new DpoSettings(Beta: 0.5, ElboSamples: 2, BlockSize: 4, MinRate: 0.9999, MaxRate: 1.0, ChosenNllWeight: 1, ScorePadding: scorePadding);
            return (float)(new DpoObjective(reference, settings, Mask).Loss(model, batch, new Generator(2)).Loss.item<float>() - Math.Log(2));
        }
        Assert.Equal(Nll(false, Eos), Nll(false, 50), 5);
        Assert.True(Math.Abs(Nll(true, Eos) - Nll(true, 50)) > 1e-3, "counted padding must change the ELBO");
        Assert.NotEqual(Nll(true, Eos), Nll(false, Eos), 3);
    }

    [Fact]
    public void OneStepRaisesTheChosenElboRelativeToTheRejected()
    {
        using var model = TinyConfigs.Model("llada2", seed: 6);
        using var reference = TinyConfigs.Model("llada2", seed: 6);
        using var batch = Pair();
        var objective = new DpoObjective(reference, new DpoSettings(Beta: 1.0, ElboSamples: 4, BlockSize: 4), Mask);
        using var optimizer = new AdamW(model.named_parameters().Select(p => (p.name, p.parameter)), new AdamWOptions(WeightDecay: 0));
        var (loss, before) = objective.Loss(model, batch, new Generator(3));
        loss.backward();
        optimizer.Step(1e-2);
        optimizer.ZeroGrad();
        using var noGrad = no_grad();
        // Same draws (same generator seed) before and after: the margin must go up, the loss down.
        var (after, marginAfter) = objective.Loss(model, batch, new Generator(3));
        Assert.True(marginAfter.item<float>() > before.item<float>() + 1e-3, $"margin {before.item<float>()} -> {marginAfter.item<float>()}");
        Assert.True(after.item<float>() < Math.Log(2));

        // The logged rewards are beta * (E_pi - E_ref) on the same draws: their difference is beta * margin.
        var result = objective.Compute(model, batch, new ObjectiveContext(0, new Generator(3), 0));
        var extra = result.Extra!;
        Assert.Equal(1.0 * marginAfter.item<float>(), extra["dpo_chosen_reward"].item<float>() - extra["dpo_rejected_reward"].item<float>(), 4);
        Assert.Equal(1.0, extra["dpo_reward_accuracy"].item<float>());
    }
}
