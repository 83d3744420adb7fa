using System.Text.Json.Nodes;
using Dllm.IO;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Tests.Cli;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Tests.Models;

/// <summary>
/// Broken model folders fail to load with one line naming the file and the field (or tensor), before any weight is
/// allocated, and `dllm inspect` refuses exactly what loading refuses. Each case crashed, hung or decoded garbage before.
/// </summary>
public class ModelFolderCheckTests
{
    public ModelFolderCheckTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A tiny Llama folder with <paramref name="edit"/> applied to its config.json.</summary>
    private static string WithConfig(TempDirectory dir, Action<JsonObject> edit, string arch = "llama")
    {
        var folder = TinyCheckpoints.Write(arch, dir.File("m"));
        var path = Path.Combine(folder, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
        return folder;
    }

    /// <summary>Rewrites model.safetensors with <paramref name="edit"/> applied to each (name, tensor).</summary>
    private static void RewriteWeights(string folder, Func<string, Tensor, Tensor> edit)
    {
        var file = Path.Combine(folder, "model.safetensors");
        List<KeyValuePair<string, Tensor>> tensors;
        using (var reader = CheckpointReader.Open(folder))
            tensors = reader.Names.Select(n => KeyValuePair.Create(n, edit(n, reader.Load(n)))).ToList();
        SafetensorsWriter.Write(file, tensors);
        foreach (var t in tensors) t.Value.Dispose();
    }

    private static void AssertRefused(string folder, params string[] fragments)
    {
        var e = Assert.Throws<DllmException>(() => LoadedModel.Load(folder).Dispose());
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        // inspect runs the same checks: it must not pass a folder that loading refuses.
        var inspect = CliRunner.InProcess("inspect", folder);
        Assert.Equal(1, inspect.ExitCode);
        Assert.Contains(e.Message, inspect.Stderr);
        Assert.Single(inspect.Stderr.Trim().Split('\n'));
    }

    public static TheoryData<string, string, string> ConfigCases => new()
    {
        // field edit (JSON of the new value), fragment of the error
        { "num_attention_heads", "0", "num_attention_heads must be positive" },
        { "vocab_size", "2147483647", "vocab_size is 2147483647, outside the sane range" },
        { "num_hidden_layers", "1000000", "num_hidden_layers is 1000000, outside the sane range" },
        { "num_hidden_layers", "50", "num_hidden_layers is 50 but the weights hold 2 layer(s)" },
        { "eos_token_id", "99999", "eos_token_id 99999 is outside the vocabulary" },
        { "rope_theta", "0", "rope_theta must be a finite number above 1" },
        { "rms_norm_eps", "-1.0", "rms_norm_eps must be a positive number below 1" },
        { "vocab_size", "200", "vocab_size 200 is smaller than the tokenizer's" },
    };

    [Theory]
    [MemberData(nameof(ConfigCases))]
    public void AConfigFieldOutOfRangeIsRefusedNamingFileAndField(string field, string value, string fragment)
    {
        using var dir = new TempDirectory();
        var folder = WithConfig(dir, c => c[field] = JsonNode.Parse(value));
        AssertRefused(folder, fragment);
    }

    [Fact]
    public void HugeShapesAreCheckedAgainstTheHeaderBeforeAnyAllocation()
    {
        // Within the sane ranges, but the embedding alone would be 2^24 x 2^17 floats (8 TB): the header says [272, 32].
        using var dir = new TempDirectory();
        var folder = WithConfig(dir, c =>
        {
            c["vocab_size"] = 1 << 24;
            c["hidden_size"] = 1 << 17;
            c["head_dim"] = 8;
        });
        AssertRefused(folder, "model.safetensors: tensor 'model.embed_tokens.weight' has shape [272, 32]", "vocab_size 16777216", "hidden_size 131072");
    }

    [Fact]
    public void ADuplicateKeyInConfigJsonIsRefused()
    {
        using var dir = new TempDirectory();
        var folder = TinyCheckpoints.Write("llama", dir.File("m"));
        var path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"vocab_size\":", "\"vocab_size\": 272, \"vocab_size\":"));
        AssertRefused(folder, "config.json", "Duplicate property 'vocab_size'");
    }

    [Fact]
    public void ZeroGroupsInAnMoeConfigIsRefusedNotDividedBy()
    {
        using var dir = new TempDirectory();
        AssertRefused(WithConfig(dir, c => c["n_group"] = 0, "llada2"), "n_group must be positive");
    }

    [Fact]
    public void IntegerTensorsWhereFloatsBelongAreRefused()
    {
        using var dir = new TempDirectory();
        var folder = TinyCheckpoints.Write("llama", dir.File("m"));
        RewriteWeights(folder, (name, t) => name == "model.norm.weight" ? t.to_type(ScalarType.Int32) : t);
        AssertRefused(folder, "model.safetensors: tensor 'model.norm.weight' is I32", "floating point");
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void NonFiniteWeightsAreRefusedAtLoad(float bad)
    {
        using var dir = new TempDirectory();
        var folder = TinyCheckpoints.Write("qwen2", dir.File("m"));
        RewriteWeights(folder, (name, t) =>
        {
            if (name != "model.layers.1.mlp.up_proj.weight") return t;
            var copy = t.clone();
            copy[3, 5] = tensor(bad);
            t.Dispose();
            return copy;
        });
        AssertRefused(folder, "model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' holds NaN or infinite values");
    }

    [Fact]
    public void ATokenizerWithoutMergesIsRefused()
    {
        using var dir = new TempDirectory();
        var folder = TinyCheckpoints.Write("llama", dir.File("m"));
        var path = Path.Combine(folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["model"]!["merges"] = new JsonArray();
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<DllmException>(() => TextTokenizer.Load(folder));
        Assert.Contains("tokenizer.json:model.merges is empty", e.Message);
        AssertRefused(folder, "merges is empty");
    }

    [Fact]
    public void AGoodFolderPassesInspectAndLoads()
    {
        using var dir = new TempDirectory();
        var folder = TinyCheckpoints.Write("ling", dir.File("m"));
        var run = CliRunner.InProcess("inspect", folder, "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.True(run.Json["valid"]!.GetValue<bool>());
        using var loaded = LoadedModel.Load(folder);
        Assert.Equal(3, loaded.Model.Config.NumLayers);
    }
}
