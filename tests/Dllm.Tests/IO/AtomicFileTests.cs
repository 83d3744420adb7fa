using Dllm.IO;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.IO;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TestDir _dir = new();

    public AtomicFileTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void WritesAndReplacesLeavingNoTempFile()
    {
        var path = _dir.File("config.json");
        AtomicFile.WriteAllText(path, "first");
        AtomicFile.WriteAllText(path, "second, longer than the first");
        AtomicFile.WriteAllBytes(_dir.File("raw.bin"), [1, 2, 3]);

        Assert.Equal("second, longer than the first", File.ReadAllText(path));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(_dir.File("raw.bin")));
        Assert.Equal(["config.json", "raw.bin"], _dir.List());
    }

    [Fact]
    public void WriterThatThrowsMidwayLeavesTheOldFileAndNoTemp()
    {
        var path = _dir.File("state.bin");
        File.WriteAllBytes(path, [9, 9, 9]);

        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[4096]);
            stream.Flush(); // the partial bytes really reach the temp file
            throw new InvalidOperationException("boom");
        }));

        Assert.Equal("boom", e.Message); // the caller's own error, unwrapped
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(path));
        Assert.Equal(["state.bin"], _dir.List());
    }

    [Fact]
    public void IoFailureBecomesADllmExceptionNamingTheFile()
    {
        var path = _dir.File("full.bin");
        var e = Assert.Throws<DllmException>(() => AtomicFile.Write(path, _ => throw new IOException("No space left on device")));
        Assert.Contains("writing '" + path + "' failed: No space left on device", e.Message);
        Assert.Empty(_dir.List());

        var missing = Assert.Throws<DllmException>(() => AtomicFile.WriteAllText(_dir.File("no/such/dir/x.json"), "{}"));
        Assert.Contains("cannot write", missing.Message);
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> ThrowsAfterFirst(Tensor first)
    {
        yield return new("first", first);
        throw new InvalidOperationException("conversion failed");
    }

    [Fact]
    public void SafetensorsWriteThatFailsKeepsTheExistingFile()
    {
        using var scope = NewDisposeScope();
        var path = _dir.File("model.safetensors");
        SafetensorsWriter.Write(path, [new("old", ones(3))]);
        var before = File.ReadAllBytes(path);

        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, ThrowsAfterFirst(zeros(5))));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.safetensors"], _dir.List());
    }

    [Fact]
    public void CheckpointWriteThatFailsKeepsTheExistingCheckpoint()
    {
        using var scope = NewDisposeScope();
        var dir = _dir.Sub("ckpt");
        SafetensorsWriter.WriteCheckpoint(dir, [new("a", ones(16)), new("b", ones(16))], maxShardBytes: 64);
        var before = _dir.List(dir).ToDictionary(n => n, n => File.ReadAllBytes(Path.Combine(dir, n)));

        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.WriteCheckpoint(dir, ThrowsAfterFirst(zeros(5))));

        Assert.Equal(before.Keys, _dir.List(dir));
        foreach (var (name, bytes) in before)
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir, name)));
        using var reader = CheckpointReader.Open(dir);
        Assert.Equal(["a", "b"], reader.Names);
    }
}
