using Dllm.IO;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.IO;

public sealed class CheckpointTests : IDisposable
{
    private readonly TestDir _dir = new();

    public CheckpointTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _dir.Dispose();

    /// <summary>Five 64-byte fp32 weights and one 6-byte bf16 one; names chosen so sorted order differs from write order.</summary>
    private static List<KeyValuePair<string, Tensor>> SmallModel() =>
    [
        new("model.embed_tokens.weight", randn(4, 4)),
        new("model.layers.0.mlp.weight", randn(4, 4)),
        new("model.layers.1.mlp.weight", randn(4, 4)),
        new("model.layers.10.mlp.weight", randn(4, 4)),
        new("model.layers.2.mlp.weight", randn(4, 4)),
        new("lm_head.weight", randn(3).to(ScalarType.BFloat16)),
    ];

    [Fact]
    public void ShardedWriteProducesTheHuggingFaceLayoutAndReadsBack()
    {
        using var scope = NewDisposeScope();
        var model = SmallModel();
        var dir = _dir.Sub("ckpt");

        // 150 bytes per shard: two 64-byte tensors fit, a third would tip it over.
        SafetensorsWriter.WriteCheckpoint(dir, model, maxShardBytes: 150, metadata: new Dictionary<string, string> { ["dllm"] = "test" });

        Assert.Equal(
            ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json"],
            _dir.List(dir));
        // Byte for byte what transformers writes: json.dumps(index, indent=2, sort_keys=True) + "\n".
        const string expectedIndex = """
            {
              "metadata": {
                "total_size": 326
              },
              "weight_map": {
                "lm_head.weight": "model-00003-of-00003.safetensors",
                "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
                "model.layers.0.mlp.weight": "model-00001-of-00003.safetensors",
                "model.layers.1.mlp.weight": "model-00002-of-00003.safetensors",
                "model.layers.10.mlp.weight": "model-00002-of-00003.safetensors",
                "model.layers.2.mlp.weight": "model-00003-of-00003.safetensors"
              }
            }

            """;
        Assert.Equal(expectedIndex, File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json")));

        using (var shard = SafetensorsFile.Open(Path.Combine(dir, "model-00002-of-00003.safetensors")))
        {
            Assert.Equal(["model.layers.1.mlp.weight", "model.layers.10.mlp.weight"], shard.Entries.Keys);
            Assert.Equal("test", shard.Metadata["dllm"]);
            Assert.Equal("pt", shard.Metadata["format"]);
        }

        using var reader = CheckpointReader.Open(dir);
        Assert.Equal(model.Select(p => p.Key), reader.Names);
        foreach (var (name, expected) in model)
        {
            Assert.True(reader.Contains(name));
            Assert.Equal(expected.shape, reader.Entry(name).Shape);
            using var loaded = reader.Load(name);
            Assert.Equal(expected.dtype, loaded.dtype);
            Assert.Equal(HandMade.RawBytes(expected), HandMade.RawBytes(loaded));
        }
        Assert.False(reader.Contains("model.norm.weight"));
    }

    [Fact]
    public void EverythingThatFitsGoesInOneModelSafetensors()
    {
        using var scope = NewDisposeScope();
        var model = SmallModel();
        var dir = _dir.Sub("single");

        SafetensorsWriter.WriteCheckpoint(dir, model, maxShardBytes: 326); // exactly the total: still fits

        Assert.Equal(["model.safetensors"], _dir.List(dir));
        using var reader = CheckpointReader.Open(dir);
        Assert.Equal(model.Select(p => p.Key), reader.Names);
        using var head = reader.Load("lm_head.weight", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, head.dtype);
    }

    [Fact]
    public void SavingAgainReplacesTheOldLayoutAndLeavesOtherFilesAlone()
    {
        using var scope = NewDisposeScope();
        var dir = _dir.Sub("resave");
        File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
        File.WriteAllText(Path.Combine(dir, "adapter_model.safetensors"), "not ours");

        SafetensorsWriter.WriteCheckpoint(dir, SmallModel(), maxShardBytes: 150); // 3 shards
        var second = SmallModel();
        SafetensorsWriter.WriteCheckpoint(dir, second); // one file: shards and index must go
        Assert.Equal(["adapter_model.safetensors", "config.json", "model.safetensors"], _dir.List(dir));

        var third = SmallModel();
        SafetensorsWriter.WriteCheckpoint(dir, third, maxShardBytes: 200); // 2 shards: model.safetensors must go
        Assert.Equal(
            ["adapter_model.safetensors", "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"],
            _dir.List(dir));

        using var reader = CheckpointReader.Open(dir);
        foreach (var (name, expected) in third)
        {
            using var loaded = reader.Load(name);
            Assert.Equal(HandMade.RawBytes(expected), HandMade.RawBytes(loaded));
        }
    }

    [Theory]
    [InlineData(new long[] { 50, 50 }, 100, "0+2")]                   // exactly full still fits
    [InlineData(new long[] { 10, 200, 10, 10, 90 }, 100, "0+1 1+1 2+2 4+1")] // oversized tensor alone
    [InlineData(new long[] { 0, 0, 0 }, 1, "0+3")]
    [InlineData(new long[] { }, 1, "")]
    public void ShardPlanFollowsTheHubRules(long[] sizes, long max, string expected)
    {
        var plan = ShardPlan.Split(sizes, max);
        Assert.Equal(expected, string.Join(" ", plan.Select(s => $"{s.Start}+{s.Count}")));
    }
}
