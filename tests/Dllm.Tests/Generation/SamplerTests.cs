using Dllm.Generation;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

public class SamplerTests
{
    public SamplerTests() => TorchRuntime.EnsureLoaded();

    private static Tensor Logits(params double[] probs) => tensor(probs.Select(p => Math.Log(p)).ToArray(), dtype: ScalarType.Float32).unsqueeze(0);

    [Fact]
    public void GreedyPicksArgmaxWithItsSoftmaxProbability()
    {
        var (t, c) = Sampler.Pick(Logits(0.2, 0.5, 0.3), SamplingOptions.Greedy);
        Assert.Equal(1, t.item<long>());
        Assert.Equal(0.5, c.item<float>(), 5);
    }

    [Fact]
    public void TopKKeepsOnlyTheKBestAndRenormalises()
    {
        var filtered = Sampler.Filter(Logits(0.1, 0.4, 0.2, 0.3), new SamplingOptions(1.0, TopK: 2)).softmax(-1)[0].data<float>().ToArray();
        Assert.Equal(new[] { 0f, 4f / 7, 0f, 3f / 7 }, filtered.Select(x => MathF.Round(x, 5)).ToArray(), new ToleranceComparer(1e-5f));
    }

    [Fact]
    public void TopPKeepsTheSmallestSetReachingP()
    {
        // Sorted: 0.5, 0.3, 0.15, 0.05. p = 0.7: 0.5 alone < 0.7, so 0.3 joins; 0.8 >= 0.7 stops there.
        var filtered = Sampler.Filter(Logits(0.15, 0.5, 0.05, 0.3), new SamplingOptions(1.0, TopP: 0.7)).softmax(-1)[0].data<float>().ToArray();
        Assert.Equal(new[] { 0f, 0.625f, 0f, 0.375f }, filtered, new ToleranceComparer(1e-5f));
    }

    [Fact]
    public void TemperatureSharpensAndFlattens()
    {
        var cold = Sampler.Filter(Logits(0.6, 0.4), new SamplingOptions(0.5)).softmax(-1)[0, 0].item<float>();
        var hot = Sampler.Filter(Logits(0.6, 0.4), new SamplingOptions(2.0)).softmax(-1)[0, 0].item<float>();
        Assert.Equal(0.36 / (0.36 + 0.16), cold, 4);                       // p^(1/T) renormalised
        Assert.Equal(Math.Sqrt(0.6) / (Math.Sqrt(0.6) + Math.Sqrt(0.4)), hot, 4);
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndFollowsTheDistribution()
    {
        var o = new SamplingOptions(1.0, Seed: 42);
        var logits = Logits(0.5, 0.3, 0.2);
        var g1 = Sampler.NewGenerator(42);
        var g2 = Sampler.NewGenerator(42);
        var counts = new int[3];
        for (var i = 0; i < 3000; i++)
        {
            var a = Sampler.Pick(logits, o, [g1]).Tokens.item<long>();
            var b = Sampler.Pick(logits, o, [g2]).Tokens.item<long>();
            Assert.Equal(a, b);
            counts[a]++;
        }
        Assert.InRange(counts[0] / 3000.0, 0.46, 0.54);
        Assert.InRange(counts[1] / 3000.0, 0.26, 0.34);
        Assert.InRange(counts[2] / 3000.0, 0.17, 0.23);
    }

    [Fact]
    public void InvalidOptionsAreClearErrors()
    {
        Assert.Contains("top-p", Assert.Throws<DllmException>(() => new SamplingOptions(TopP: 0).Validate()).Message);
        Assert.Contains("temperature", Assert.Throws<DllmException>(() => new SamplingOptions(-1).Validate()).Message);
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
