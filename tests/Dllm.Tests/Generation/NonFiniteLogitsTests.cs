using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// A model whose logits turn NaN (weights broken after loading, or an overflow in low precision) stops decoding
/// with an error, greedy or sampled, AR or diffusion, instead of streaming garbage or failing inside libtorch.
/// </summary>
public class NonFiniteLogitsTests
{
    public NonFiniteLogitsTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A tiny model in memory (the loader would refuse it) whose last norm makes every logit NaN.</summary>
    private static LoadedModel Broken(string arch)
    {
        var model = TinyConfigs.Model(arch);
        using (no_grad()) model.state_dict()["model.norm.weight"].fill_(float.NaN);
        var loaded = new LoadedModel(model, TinyCheckpoints.Tokenizer());
        if (arch == "llada2") loaded.EnsureMaskToken();
        return loaded;
    }

    [Theory]
    [InlineData("qwen2", DecodeMode.Ar, 0.0)]
    [InlineData("qwen2", DecodeMode.Ar, 0.8)]
    [InlineData("llada2", DecodeMode.Diffusion, 0.0)]
    [InlineData("llada2", DecodeMode.Diffusion, 0.8)]
    public void DecodingStopsWithAnErrorWhenLogitsAreNotFinite(string arch, DecodeMode mode, double temperature)
    {
        using var model = Broken(arch);
        var request = new GenerationRequest
        {
            Prompt = "hello",
            Mode = mode,
            Options = new DecodeOptions { MaxNewTokens = 8, Sampling = new SamplingOptions(temperature, Seed: 3) },
            Block = new BlockDecodeOptions(4),
        };
        var e = Assert.Throws<NonFiniteLogitsException>(() => TextGeneration.Generate(model, request));
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Fact]
    public void AHealthyModelDecodesAsBefore()
    {
        using var model = new LoadedModel(TinyConfigs.Model("qwen2"), TinyCheckpoints.Tokenizer());
        var result = TextGeneration.Generate(model, new GenerationRequest { Prompt = "hello", Options = new DecodeOptions { MaxNewTokens = 5 } });
        Assert.InRange(result.TokenIds.Length, 1, 5);
    }
}
