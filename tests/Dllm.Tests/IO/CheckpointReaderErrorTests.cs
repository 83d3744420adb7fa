using Dllm.IO;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.IO;

public sealed class CheckpointReaderErrorTests : IDisposable
{
    private readonly TestDir _dir = new();

    public CheckpointReaderErrorTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _dir.Dispose();

    private static void WriteOne(string path, params string[] names)
    {
        using var scope = NewDisposeScope();
        SafetensorsWriter.Write(path, names.Select(n => new KeyValuePair<string, Tensor>(n, zeros(2))));
    }

    private static string Index(params (string Name, string File)[] map) =>
        "{\"metadata\":{\"total_size\":0},\"weight_map\":{" + string.Join(",", map.Select(p => $"\"{p.Name}\":\"{p.File}\"")) + "}}";

    private static string OpenFails(string dir)
    {
        var e = Assert.Throws<DllmException>(() => CheckpointReader.Open(dir).Dispose());
        return e.Message;
    }

    [Fact]
    public void MissingFolder() =>
        Assert.Contains("does not exist", OpenFails(_dir.File("no-such-model")));

    [Fact]
    public void FolderWithoutSafetensors()
    {
        var dir = _dir.Sub("empty");
        File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
        Assert.Contains("holds no model.safetensors, no model.safetensors.index.json and no other *.safetensors file", OpenFails(dir));
    }

    [Fact]
    public void IndexNamingAMissingShard()
    {
        var dir = _dir.Sub("missing-shard");
        WriteOne(Path.Combine(dir, "model-00001-of-00002.safetensors"), "a");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
            Index(("a", "model-00001-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors")));
        Assert.Contains("puts tensor 'b' in 'model-00002-of-00002.safetensors', but that file is missing", OpenFails(dir));
    }

    [Fact]
    public void IndexPointingAtTheWrongShard()
    {
        var dir = _dir.Sub("wrong-shard");
        WriteOne(Path.Combine(dir, "s1.safetensors"), "a");
        WriteOne(Path.Combine(dir, "s2.safetensors"), "b");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), Index(("a", "s2.safetensors"), ("b", "s1.safetensors")));
        Assert.Contains("puts tensor 'a' in 's2.safetensors', but that file does not hold it", OpenFails(dir));
    }

    [Fact]
    public void IndexThatIsNotJsonOrEscapesTheFolder()
    {
        var dir = _dir.Sub("bad-index");
        var index = Path.Combine(dir, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\": {");
        Assert.Contains("is not a valid checkpoint index: it is not valid JSON", OpenFails(dir));

        File.WriteAllText(index, "{\"metadata\": {}}");
        Assert.Contains("it has no \"weight_map\" object", OpenFails(dir));

        File.WriteAllText(index, Index());
        Assert.Contains("its weight_map is empty", OpenFails(dir));

        File.WriteAllText(index, Index(("a", "../elsewhere.safetensors")));
        Assert.Contains("not a file name in the same folder", OpenFails(dir));
    }

    [Fact]
    public void SameTensorInTwoFiles()
    {
        var dir = _dir.Sub("duplicate");
        WriteOne(Path.Combine(dir, "first.safetensors"), "a", "shared");
        WriteOne(Path.Combine(dir, "second.safetensors"), "shared", "b");
        var message = OpenFails(dir);
        Assert.Contains("tensor 'shared' is in both", message);
        Assert.Contains("first.safetensors", message);
        Assert.Contains("second.safetensors", message);
    }

    [Fact]
    public void CorruptShardIsNamed()
    {
        var dir = _dir.Sub("corrupt");
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), [1, 2, 3]);
        Assert.Contains("model.safetensors' is not a valid safetensors file", OpenFails(dir));
    }

    [Fact]
    public void UnknownTensorNameIsNamed()
    {
        var dir = _dir.Sub("one");
        WriteOne(Path.Combine(dir, "model.safetensors"), "a");
        using var reader = CheckpointReader.Open(dir);
        Assert.Contains("tensor 'lm_head.weight' is not in the checkpoint", Assert.Throws<DllmException>(() => reader.Entry("lm_head.weight")).Message);
        Assert.Contains("tensor 'lm_head.weight' is not in the checkpoint", Assert.Throws<DllmException>(() => reader.Load("lm_head.weight")).Message);
    }

    [Fact]
    public void AnySafetensorsFilesAreReadWhenThereIsNoModelFileOrIndex()
    {
        var dir = _dir.Sub("loose");
        WriteOne(Path.Combine(dir, "b.safetensors"), "b1", "b2");
        WriteOne(Path.Combine(dir, "a.safetensors"), "a1");
        using var reader = CheckpointReader.Open(dir);
        Assert.Equal(["a1", "b1", "b2"], reader.Names);
    }

    [Fact]
    public void HandWrittenIndexWithExtraFieldsIsRead()
    {
        // Other tools add metadata fields and format the index differently; only weight_map matters.
        var dir = _dir.Sub("hub");
        WriteOne(Path.Combine(dir, "model-00001-of-00002.safetensors"), "x");
        WriteOne(Path.Combine(dir, "model-00002-of-00002.safetensors"), "y");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), """
            {"metadata": {"total_size": 16, "total_parameters": 4},
             "weight_map": {"y": "model-00002-of-00002.safetensors", "x": "model-00001-of-00002.safetensors"}}
            """);
        using var reader = CheckpointReader.Open(dir);
        Assert.Equal(["x", "y"], reader.Names);
        Assert.Equal(SafetensorsDType.F32, reader.Entry("y").DType);
    }

    [Fact]
    public void ModelSafetensorsWinsOverAnIndexAsInTransformers()
    {
        var dir = _dir.Sub("both");
        WriteOne(Path.Combine(dir, "model.safetensors"), "single");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), Index(("sharded", "model-00001-of-00001.safetensors")));
        using var reader = CheckpointReader.Open(dir);
        Assert.Equal(["single"], reader.Names);
    }
}
