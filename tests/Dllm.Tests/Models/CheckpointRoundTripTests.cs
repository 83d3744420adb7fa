using System.Text.Json.Nodes;
using Dllm.IO;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

public class CheckpointRoundTripTests
{
    public CheckpointRoundTripTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Archs => new(TinyConfigs.Architectures);

    private static Tensor Probe() => tensor(new long[] { 3, 9, 27, 81, 243, 5 }).unsqueeze(0);

    [Theory]
    [MemberData(nameof(Archs))]
    public void SaveThenLoadGivesBitIdenticalWeightsAndLogits(string arch)
    {
        using var dir = new TempDirectory();
        using var original = TinyConfigs.Model(arch, seed: 21);
        ModelSaver.Save(original, TinyCheckpoints.Tokenizer(), dir.File("ckpt"));
        using var loaded = ModelLoader.Load(dir.File("ckpt"));
        var a = original.state_dict();
        foreach (var (name, value) in loaded.state_dict())
            Assert.True(value.eq(a[name]).all().item<bool>(), $"{name} changed on the round trip");
        using var noGrad = no_grad();
        Assert.True(original.Forward(Probe()).eq(loaded.Forward(Probe())).all().item<bool>());
        Assert.True(JsonNode.DeepEquals(Dllm.Config.ModelConfigWriter.ToJson(original.Config, "float32"), Dllm.Config.ModelConfigWriter.ToJson(loaded.Config, "float32")));
        Assert.Equal(original.Config.EosTokenIds, loaded.Config.EosTokenIds);
        Assert.Equal(original.Config.Moe, loaded.Config.Moe);
    }

    [Fact]
    public void Bf16SaveStoresBf16AndLoadsTheRoundedValues()
    {
        using var dir = new TempDirectory();
        using var original = TinyConfigs.Model("ling", seed: 2);
        ModelSaver.Save(original, TinyCheckpoints.Tokenizer(), dir.File("bf16"), ScalarType.BFloat16);
        using (var reader = CheckpointReader.Open(dir.File("bf16")))
        {
            Assert.All(reader.Names.Where(n => !n.EndsWith("expert_bias")), n => Assert.Equal(SafetensorsDType.BF16, reader.Entry(n).DType));
            Assert.Equal(SafetensorsDType.F32, reader.Entry("model.layers.1.mlp.gate.expert_bias").DType);
        }
        Assert.Equal("bfloat16", JsonNode.Parse(File.ReadAllText(dir.File("bf16/config.json")))!["torch_dtype"]!.GetValue<string>());
        using var loaded = ModelLoader.Load(dir.File("bf16"), new LoadOptions(DType: "bfloat16"));
        var expected = original.state_dict()["model.layers.0.attention.query_key_value.weight"].to_type(ScalarType.BFloat16);
        Assert.True(loaded.state_dict()["model.layers.0.attention.query_key_value.weight"].eq(expected).all().item<bool>());
    }

    [Fact]
    public void ShardedCheckpointLoadsLikeASingleFile()
    {
        using var dir = new TempDirectory();
        using var original = TinyConfigs.Model("qwen3", seed: 4);
        ModelSaver.Save(original, TinyCheckpoints.Tokenizer(), dir.File("sharded"), maxShardBytes: 20_000);
        Assert.True(File.Exists(dir.File("sharded/model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(dir.File("sharded"), "model-*-of-*.safetensors").Length > 2);
        using var loaded = ModelLoader.Load(dir.File("sharded"));
        using var noGrad = no_grad();
        Assert.True(original.Forward(Probe()).eq(loaded.Forward(Probe())).all().item<bool>());
    }

    [Fact]
    public void SavingOverAFolderWithForeignFilesIsRefused()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("notes.txt"), "mine");
        using var model = TinyConfigs.Model("llama");
        var e = Assert.Throws<DllmException>(() => ModelSaver.Save(model, TinyCheckpoints.Tokenizer(), dir.Path));
        Assert.Contains("notes.txt", e.Message);
        Assert.Equal("mine", File.ReadAllText(dir.File("notes.txt")));
        Assert.Single(Directory.GetFileSystemEntries(Path.GetDirectoryName(dir.Path)!, Path.GetFileName(dir.Path) + "*"));
    }

    private static string WriteWithTensors(TempDirectory dir, string arch, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> edit)
    {
        var path = dir.File(arch + "-edited");
        TinyCheckpoints.Write(arch, path);
        Dictionary<string, Tensor> tensors;
        using (var reader = CheckpointReader.Open(path))
            tensors = reader.Names.ToDictionary(n => n, n => reader.Load(n));
        File.Delete(Path.Combine(path, "model.safetensors"));
        SafetensorsWriter.Write(Path.Combine(path, "model.safetensors"), edit(tensors));
        return path;
    }

    [Fact]
    public void MissingTensorIsAnErrorNamingIt()
    {
        using var dir = new TempDirectory();
        var path = WriteWithTensors(dir, "llama", t => { t.Remove("model.layers.1.mlp.up_proj.weight"); return t; });
        var e = Assert.Throws<DllmException>(() => ModelLoader.Load(path));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message);
    }

    [Fact]
    public void WrongShapeIsAnErrorNamingTheTensorAndBothShapes()
    {
        using var dir = new TempDirectory();
        var path = WriteWithTensors(dir, "qwen2", t => { t["model.norm.weight"] = ones(31); return t; });
        var e = Assert.Throws<DllmException>(() => ModelLoader.Load(path));
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("[31]", e.Message);
        Assert.Contains("[32]", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsAnErrorButMtpLayersAndRopeCachesAreSkipped()
    {
        using var dir = new TempDirectory();
        var path = WriteWithTensors(dir, "llama", t => { t["model.layers.0.self_attn.extra.weight"] = ones(2); return t; });
        Assert.Contains("model.layers.0.self_attn.extra.weight", Assert.Throws<DllmException>(() => ModelLoader.Load(path)).Message);

        var ok = WriteWithTensors(dir, "llama", t => { t["model.layers.0.self_attn.rotary_emb.inv_freq"] = ones(4); return t; });
        using var loaded = ModelLoader.Load(ok);

        var ling = WriteWithTensors(dir, "ling", t => { t["model.layers.3.eh_proj.weight"] = ones(32, 64); return t; });
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(ling, "config.json")))!.AsObject();
        config["num_nextn_predict_layers"] = 1;
        File.WriteAllText(Path.Combine(ling, "config.json"), config.ToJsonString());
        using var mtp = ModelLoader.Load(ling);
    }

    [Fact]
    public void UnsupportedArchitectureNamesTheSupportedOnes()
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write("llama", dir.File("gpt"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(path, "config.json")))!.AsObject();
        config["architectures"] = new JsonArray("GPT2LMHeadModel");
        File.WriteAllText(Path.Combine(path, "config.json"), config.ToJsonString());
        var e = Assert.Throws<DllmException>(() => ModelLoader.Load(path));
        Assert.Contains("GPT2LMHeadModel", e.Message);
        Assert.Contains("LlamaForCausalLM", e.Message);
        Assert.Contains("LLaDA2MoeModelLM", e.Message);
    }

    [Fact]
    public void UnknownConfigFieldsSurviveTheRoundTrip()
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write("qwen2", dir.File("a"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(path, "config.json")))!.AsObject();
        config["my_custom_field"] = new JsonObject { ["x"] = 1 };
        File.WriteAllText(Path.Combine(path, "config.json"), config.ToJsonString());
        using var loaded = LoadedModel.Load(path);
        loaded.Save(dir.File("b"));
        var again = JsonNode.Parse(File.ReadAllText(dir.File("b/config.json")))!;
        Assert.Equal(1, again["my_custom_field"]!["x"]!.GetValue<int>());
    }
}
