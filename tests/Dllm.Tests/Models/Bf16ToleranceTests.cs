using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

/// <summary>bf16 is allowed where it stays close to the fp32 reference: this is how close.</summary>
public class Bf16ToleranceTests
{
    public Bf16ToleranceTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Archs => new(TinyConfigs.Architectures);

    [Theory]
    [MemberData(nameof(Archs))]
    public void Bf16LogitsStayNearTheFp32Reference(string arch)
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write(arch, dir.File("m"), seed: 3);
        using var fp32 = ModelLoader.Load(path);
        using var bf16 = ModelLoader.Load(path, new LoadOptions(DType: "bfloat16"));
        using var noGrad = no_grad();
        var tokens = tensor(new long[] { 3, 14, 15, 92, 65, 35, 89, 79, 32, 38 }).unsqueeze(0);
        var a = fp32.Forward(tokens);
        var b = bf16.Forward(tokens);
        Assert.Equal(ScalarType.Float32, b.dtype);                       // logits always come back in fp32
        var scale = a.abs().max().item<float>();
        var error = (a - b).abs().max().item<float>();
        Assert.True(error < 0.05 * scale, $"{arch}: bf16 deviates by {error} on logits of scale {scale}");
        // The most likely token agrees at most positions.
        var agree = a.argmax(-1).eq(b.argmax(-1)).to_type(ScalarType.Float32).mean().item<float>();
        Assert.True(agree >= 0.8f, $"{arch}: argmax agrees at only {agree:P0} of positions");
    }
}
