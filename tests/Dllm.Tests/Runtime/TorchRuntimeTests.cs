using Dllm.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Tests.Runtime;

public class TorchRuntimeTests
{
    [Fact]
    public void LibtorchLoadsAndComputesAKnownMatmul()
    {
        TorchRuntime.EnsureLoaded();
        using var a = tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var b = tensor(new float[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
        using var c = a.matmul(b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
    }

    [Theory]
    [InlineData("bf16", ScalarType.BFloat16)]
    [InlineData("float32", ScalarType.Float32)]
    [InlineData("fp16", ScalarType.Float16)]
    public void ParsesDTypeNames(string name, ScalarType expected) => Assert.Equal(expected, TorchRuntime.ParseDType(name));

    [Fact]
    public void UnknownDeviceIsAClearError()
    {
        var e = Assert.Throws<DllmException>(() => TorchRuntime.ParseDevice("tpu"));
        Assert.Contains("unknown device", e.Message);
    }
}
