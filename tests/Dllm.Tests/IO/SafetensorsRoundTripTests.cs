using Dllm.IO;
using Dllm.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Tests.IO;

public sealed class SafetensorsRoundTripTests : IDisposable
{
    private readonly TestDir _dir = new();

    public SafetensorsRoundTripTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RoundTripIsBitIdenticalForEveryDtypeAndShapeAndKeepsMetadata()
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32.matrix"] = randn(3, 4),
            ["bf16.matrix"] = randn(2, 5).to(ScalarType.BFloat16),
            ["f16.vector"] = randn(7).to(ScalarType.Float16),
            ["f32.scalar"] = tensor(3.25f),
            ["bf16.scalar"] = tensor(-0.5f).to(ScalarType.BFloat16),
            ["bf16.empty"] = empty(new long[] { 0, 3 }, ScalarType.BFloat16),
            ["f16.empty"] = zeros(new long[] { 4, 0 }, ScalarType.Float16),
            ["i64.ids"] = tensor(new long[] { 1, -2, long.MaxValue }),
            ["bool.mask"] = tensor(new[] { true, false, true }),
            ["u8.bytes"] = tensor(new byte[] { 0, 255, 7 }),
        };
        Assert.Empty(tensors["f32.scalar"].shape); // really 0-d, not [1]
        var metadata = new Dictionary<string, string> { ["note"] = "héllo \"quoted\" <&>", ["step"] = "12" };
        var path = _dir.File("all.safetensors");

        SafetensorsWriter.Write(path, tensors, metadata);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(tensors.Keys, file.Entries.Keys); // written in the given order
        foreach (var (name, expected) in tensors)
        {
            var entry = file.Entries[name];
            Assert.Equal(expected.shape, entry.Shape);
            Assert.Equal(expected.dtype, entry.DType.ToScalarType());
            Assert.Equal(HandMade.RawBytes(expected), file.Bytes(name).ToArray());
            using var loaded = file.Load(name);
            Assert.Equal(expected.dtype, loaded.dtype);
            Assert.Equal(expected.shape, loaded.shape);
            Assert.Equal(HandMade.RawBytes(expected), HandMade.RawBytes(loaded));
        }
        Assert.Equal("héllo \"quoted\" <&>", file.Metadata["note"]);
        Assert.Equal("12", file.Metadata["step"]);
        Assert.Equal("pt", file.Metadata["format"]); // transformers refuses files without it
    }

    [Fact]
    public void Bf16BitsSurviveLoadAndWriteExactly()
    {
        // NaN with a payload, a subnormal, -0, -inf, 1.0 and the largest finite value: any float
        // round trip on the way would change at least the NaN payload or the subnormal.
        var bits = HandMade.U16(0x7FC1, 0x0001, 0x8000, 0xFF80, 0x3F80, 0x7F7F);
        var source = _dir.File("source.safetensors");
        File.WriteAllBytes(source, HandMade.File("""{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}""", bits));

        using (var file = SafetensorsFile.Open(source))
        using (var w = file.Load("w"))
        {
            Assert.Equal(ScalarType.BFloat16, w.dtype);
            SafetensorsWriter.Write(_dir.File("copy.safetensors"), [new("w", w)]);
        }

        using var copy = SafetensorsFile.Open(_dir.File("copy.safetensors"));
        Assert.Equal(bits, copy.Bytes("w").ToArray());
    }

    [Fact]
    public void LoadCastsOnlyAfterReadingTheStoredDtype()
    {
        // bf16 0x3FC0 = 1.5, 0xC020 = -2.5, 0x4049 = 3.140625: exact in fp32, so the cast is checkable.
        var path = _dir.File("bf16.safetensors");
        File.WriteAllBytes(path, HandMade.File("""{"x":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}""", HandMade.U16(0x3FC0, 0xC020, 0x4049)));
        using var file = SafetensorsFile.Open(path);

        using var asFloat = file.Load("x", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, asFloat.dtype);
        Assert.Equal(new[] { 1.5f, -2.5f, 3.140625f }, asFloat.data<float>().ToArray());

        using var asCpu = file.Load("x", device: CPU);
        Assert.Equal(ScalarType.BFloat16, asCpu.dtype);
    }

    [Fact]
    public void LoadedTensorsOwnTheirMemoryAndLoadLeaksNothing()
    {
        var path = _dir.File("own.safetensors");
        using (var t = tensor(new[] { 1f, 2f, 3f }))
            SafetensorsWriter.Write(path, [new("t", t)]);

        var baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Tensor kept;
        using (var file = SafetensorsFile.Open(path))
        {
            for (var i = 0; i < 3; i++)
                file.Load("t", ScalarType.Float16).Dispose();
            kept = file.Load("t", ScalarType.Float64);
        }

        // The file is closed and unmapped: the values must come from the tensor's own memory.
        Assert.Equal(new[] { 1.0, 2.0, 3.0 }, kept.data<double>().ToArray());
        kept.Dispose();
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void NonContiguousTensorsAreWrittenInLogicalOrder()
    {
        using var scope = NewDisposeScope();
        var matrix = arange(6, ScalarType.Float32).reshape(2, 3);
        var transposed = matrix.t(); // [3, 2], a strided view
        var path = _dir.File("t.safetensors");

        SafetensorsWriter.Write(path, [new("t", transposed)]);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(new long[] { 3, 2 }, file.Entries["t"].Shape);
        Assert.Equal(HandMade.F32(0, 3, 1, 4, 2, 5), file.Bytes("t").ToArray());
    }

    [Fact]
    public void WriterRejectsDuplicateNamesReservedNamesAndUnsupportedDtypes()
    {
        using var scope = NewDisposeScope();
        var path = _dir.File("bad.safetensors");
        var a = zeros(2);

        var twice = Assert.Throws<DllmException>(() => SafetensorsWriter.Write(path, [new("a", a), new("a", a)]));
        Assert.Contains("tensor 'a' is given twice", twice.Message);

        var reserved = Assert.Throws<DllmException>(() => SafetensorsWriter.Write(path, [new("__metadata__", a)]));
        Assert.Contains("reserved", reserved.Message);

        var complex = Assert.Throws<DllmException>(() => SafetensorsWriter.Write(path, [new("c", zeros(2, ScalarType.ComplexFloat32))]));
        Assert.Contains("tensor 'c' has dtype ComplexFloat32", complex.Message);

        Assert.Empty(_dir.List());
    }

    [Fact]
    public void MissingTensorIsAnErrorNamingTheKey()
    {
        var path = _dir.File("one.safetensors");
        using (var t = zeros(1))
            SafetensorsWriter.Write(path, [new("present", t)]);
        using var file = SafetensorsFile.Open(path);

        Assert.Contains("tensor 'absent' is not in", Assert.Throws<DllmException>(() => file.Bytes("absent")).Message);
        Assert.Contains("tensor 'absent' is not in", Assert.Throws<DllmException>(() => file.Load("absent")).Message);
    }

    [Fact]
    public void ChunkedCopyCoversEveryByteInOrder()
    {
        // Tensors over 2 GB are copied in chunks; a 12-byte chunk limit exercises the same path on 40 bytes.
        using var t = arange(10, ScalarType.Int32);
        var seen = new List<(long Offset, byte[] Bytes)>();

        TensorChunks.ForEach(t, (offset, chunk) => seen.Add((offset, chunk.ToArray())), maxChunkBytes: 12);

        Assert.Equal(new long[] { 0, 12, 24, 36 }, seen.Select(s => s.Offset));
        Assert.Equal(HandMade.RawBytes(t), seen.SelectMany(s => s.Bytes).ToArray());
    }
}
