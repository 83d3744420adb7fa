using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Config;

/// <summary>A LLaDA2 config that omits a field means what the official LLaDA2MoeConfig default and modeling code make of it.</summary>
public class BailingDefaultsTests
{
    public BailingDefaultsTests() => TorchRuntime.EnsureLoaded();

    private static ModelConfig Without(params string[] fields)
    {
        var json = TinyConfigs.Json("llada2");
        foreach (var f in fields) json.Remove(f);
        return ModelConfigReader.Read(json.ToJsonString());
    }

    [Fact]
    public void OmittedFieldsTakeTheOfficialDefaults()
    {
        var c = Without("partial_rotary_factor", "rms_norm_eps", "routed_scaling_factor", "n_group", "topk_group", "use_bias",
            "num_shared_experts", "max_position_embeddings", "use_qk_norm");
        Assert.Equal(c.HeadDim / 2, c.RotaryDim);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(2.5, c.Moe!.RoutedScalingFactor);
        Assert.Equal(8, c.Moe.NumGroups);
        Assert.Equal(4, c.Moe.TopKGroups);
        Assert.True(c.OutputBias);
        Assert.False(c.QkvBias);
        Assert.True(c.QkNorm);
        Assert.Equal(0, c.Moe.NumSharedExperts);
        Assert.Equal(16384, c.MaxPositionEmbeddings);
    }

    [Fact]
    public void RotaryDimIsNeverReadButPartialRotaryFactorIs()
    {
        var json = TinyConfigs.Json("llada2");
        json.Remove("partial_rotary_factor");
        json["rotary_dim"] = 8;   // the official attention ignores it: head_dim * 0.5 = 4 dims rotate
        Assert.Equal(4, ModelConfigReader.Read(json.ToJsonString()).RotaryDim);
        json["partial_rotary_factor"] = 1.0;
        Assert.Equal(8, ModelConfigReader.Read(json.ToJsonString()).RotaryDim);
    }

    [Fact]
    public void TopKWeightsAreRenormalisedEvenWhenTheConfigSaysNot()
    {
        var json = TinyConfigs.Json("llada2");
        json["norm_topk_prob"] = false;
        var config = ModelConfigReader.Read(json.ToJsonString());
        using var router = new LLaDA2MoeRouter(config, Placement.Cpu32);
        using var scope = NewDisposeScope();
        using (no_grad()) router.Weight.normal_(0, 1, new Generator(3));
        var (weights, _) = router.Route(randn(5, config.HiddenSize, generator: new Generator(4)));
        var sums = weights.sum(-1).data<float>().ToArray();
        Assert.All(sums, s => Assert.Equal(config.Moe!.RoutedScalingFactor, s, 4));
    }

    [Fact]
    public void ZeroSharedExpertsBuildsAZeroWidthExpertAsTheOfficialCodeDoes()
    {
        var json = TinyConfigs.Json("llada2");
        json["num_shared_experts"] = 0;
        var config = ModelConfigReader.Read(json.ToJsonString());
        using var model = ModelFactory.Create(config, Placement.Cpu32);
        var names = model.state_dict();
        Assert.Equal([0L, config.HiddenSize], names["model.layers.1.mlp.shared_experts.gate_proj.weight"].shape);
        Assert.Equal([config.HiddenSize, 0L], names["model.layers.1.mlp.shared_experts.down_proj.weight"].shape);

        // It adds nothing: the MoE block equals the routed experts alone (same weights, no shared module).
        json["num_shared_experts"] = null;
        var without = ModelConfigReader.Read(json.ToJsonString());
        Assert.Null(without.Moe!.NumSharedExperts);
        using var plain = ModelFactory.Create(without, Placement.Cpu32);
        Assert.DoesNotContain(plain.state_dict().Keys, k => k.Contains("shared_experts"));
        ModelInit.Randomize(model, 5);
        using (no_grad())
            foreach (var (name, t) in plain.state_dict()) t.copy_(names[name]);
        model.eval();
        plain.eval();
        using var scope = NewDisposeScope();
        var tokens = tensor(new long[] { 5, 6, 7, 8 }).unsqueeze(0);
        var diff = (model.Forward(tokens) - plain.Forward(tokens)).abs().max().item<float>();
        Assert.Equal(0f, diff);

        // Saved as HF saves it (empty tensors included) and read back.
        using var dir = new TempDirectory();
        ModelSaver.Save(model, TinyCheckpoints.Tokenizer(), dir.File("m"));
        using var loaded = ModelLoader.Load(dir.File("m"));
        Assert.Equal(0f, (loaded.Forward(tokens) - model.Forward(tokens)).abs().max().item<float>());
    }

    [Fact]
    public void ACheckpointWithoutTheZeroWidthExpertOrAnUnstatedDenseBiasLoadsWithZeros()
    {
        using var dir = new TempDirectory();
        var source = TinyConfigs.Json("llada2");
        source["num_shared_experts"] = null;   // saved without any shared-expert tensor
        using (var saved = ModelFactory.Create(ModelConfigReader.Read(source.ToJsonString()), Placement.Cpu32))
        {
            ModelInit.Randomize(saved, 2);
            ModelSaver.Save(saved, TinyCheckpoints.Tokenizer(), dir.File("m"));
        }
        var path = dir.File("m");
        var configPath = Path.Combine(path, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json["num_shared_experts"] = 0;
        json.Remove("use_bias");   // official default: dense has a bias; the checkpoint has none, so it is zero
        File.WriteAllText(configPath, json.ToJsonString());
        using var model = ModelLoader.Load(path);
        Assert.True(model.Config.OutputBias);
        var bias = model.state_dict()["model.layers.0.attention.dense.bias"];
        Assert.Equal(0f, bias.abs().max().item<float>());

        // A stated use_bias=true with no bias tensor is a broken checkpoint, named as such.
        json["use_bias"] = true;
        File.WriteAllText(configPath, json.ToJsonString());
        var e = Assert.Throws<DllmException>(() => ModelLoader.Load(path));
        Assert.Contains("attention.dense.bias", e.Message);
    }

    /// <summary>
    /// LLaDA2.1 releases keep LLaDA2MoeModelLM / llada2_moe and the 2.0 field set, with the newer "dtype" key and
    /// fewer stated fields (no use_bias, use_qkv_bias, use_qk_norm, rotary_dim), a 32K context: the defaults fill them.
    /// </summary>
    [Fact]
    public void ALlada21StyleConfigLoadsWithTheOfficialDefaultsAndSavesItsDtype()
    {
        var json = TinyConfigs.Json("llada2");
        foreach (var f in new[] { "use_bias", "use_qkv_bias", "use_qk_norm", "moe_router_enable_expert_bias", "router_dtype" }) json.Remove(f);
        json["dtype"] = "bfloat16";
        json["max_position_embeddings"] = 32768;
        var config = ModelConfigReader.Read(json.ToJsonString());
        Assert.Equal(ModelConfigReader.LLaDA2Architecture, config.Architecture);
        Assert.True(config.IsDiffusion);
        Assert.True(config.OutputBias);
        Assert.False(config.QkvBias);
        Assert.True(config.QkNorm);
        Assert.True(config.Moe!.UseExpertBias);
        Assert.Equal(32768, config.MaxPositionEmbeddings);
        var written = ModelConfigWriter.ToJson(config, "float32");
        Assert.Equal("float32", written["dtype"]!.GetValue<string>());
        Assert.Equal("float32", written["torch_dtype"]!.GetValue<string>());
    }
}
