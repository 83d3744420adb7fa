using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

public class MoeBlockTests
{
    public MoeBlockTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData("ling")]
    [InlineData("llada2")]
    public void VectorisedMoeEqualsNaivePerTokenLoop(string arch)
    {
        using var model = TinyConfigs.Model(arch, seed: 3);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Layer 0 is dense (first_k_dense_replace = 1); layer 1 is the first sparse one.
        var moe = (LLaDA2MoeSparseBlock)model.named_modules().Single(m => m.name == "model.layers.1.mlp").module;
        var settings = model.Config.Moe!;
        // A bias large enough to change which experts win, to prove it steers choice but not weights.
        moe.Router.ExpertBias.copy_(linspace(-0.3, 0.3, settings.NumExperts));
        var x = randn(new long[] { 2, 5, model.Config.HiddenSize }, generator: new TorchSharp.torch.Generator(7));
        var fast = moe.forward(x).reshape(-1, model.Config.HiddenSize);

        var flat = x.reshape(-1, model.Config.HiddenSize);
        var w = moe.Router.Weight.data<float>().ToArray();
        var bias = moe.Router.ExpertBias.data<float>().ToArray();
        int e = settings.NumExperts, g = settings.NumGroups, per = e / g, h = model.Config.HiddenSize;
        for (var t = 0; t < flat.shape[0]; t++)
        {
            var xt = flat[t].data<float>().ToArray();
            var score = new double[e];
            for (var j = 0; j < e; j++)
            {
                double dot = 0;
                for (var i = 0; i < h; i++) dot += w[j * h + i] * xt[i];
                score[j] = 1 / (1 + Math.Exp(-dot));
            }
            var biased = score.Select((s, j) => s + bias[j]).ToArray();
            var groupScore = Enumerable.Range(0, g)
                .Select(gi => biased.Skip(gi * per).Take(per).OrderDescending().Take(2).Sum()).ToArray();
            var keptGroups = Enumerable.Range(0, g).OrderByDescending(gi => groupScore[gi]).Take(settings.TopKGroups).ToHashSet();
            var chosen = Enumerable.Range(0, e).Where(j => keptGroups.Contains(j / per))
                .OrderByDescending(j => biased[j]).Take(settings.NumExpertsPerToken).ToArray();
            var mix = chosen.Select(j => score[j]).ToArray();
            var total = mix.Sum();
            var expected = zeros(h);
            for (var k = 0; k < chosen.Length; k++)
                expected += moe.Experts[chosen[k]].forward(flat[t].unsqueeze(0))[0] * (mix[k] / total * settings.RoutedScalingFactor);
            expected += moe.Shared!.forward(flat[t].unsqueeze(0))[0];
            var diff = (expected - fast[t]).abs().max().item<float>();
            Assert.True(diff < 1e-5, $"token {t}: |naive - vectorised| = {diff}");
        }
    }
}
