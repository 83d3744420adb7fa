using Dllm.Models;
using Dllm.Models.Layers;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

public class ModelInitTests
{
    // A from-scratch model follows its config's initializer_range (HF's meaning: the std of the normal init),
    // 0.02 when the config is silent; norm gains start at one either way.
    [Theory]
    [InlineData(null, 0.02)]
    [InlineData(0.1, 0.1)]
    public void MatricesFollowTheConfigsInitializerRange(double? range, double expected)
    {
        var json = TinyConfigs.Json("llama");
        if (range is { } r) json["initializer_range"] = r;
        using var model = ModelFactory.Create(Dllm.Config.ModelConfigReader.Read(json.ToJsonString(), "llama"), Placement.Cpu32);
        ModelInit.Randomize(model, seed: 3);
        using var scope = NewDisposeScope();
        var weights = model.state_dict();
        var matrices = cat(weights.Where(kv => kv.Key.EndsWith("proj.weight", StringComparison.Ordinal)).Select(kv => kv.Value.flatten()).ToArray());
        Assert.InRange(matrices.std().item<float>(), expected * 0.95, expected * 1.05);
        Assert.All(weights.Where(kv => kv.Key.EndsWith("norm.weight", StringComparison.Ordinal)), kv => Assert.Equal(1f, kv.Value.min().item<float>()));
    }
}
