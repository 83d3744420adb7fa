using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Dllm.IO;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.IO;

/// <summary>Format compatibility: files built byte by byte from the specification, not by our writer.</summary>
public sealed class HandBuiltFileTests : IDisposable
{
    private readonly TestDir _dir = new();

    public HandBuiltFileTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // padding is optional: the data section starts right after the declared header
    public void ReadsAFileBuiltByHand(bool pad)
    {
        // Keys out of data order, metadata last, a 0-d tensor and an empty one, as other writers may produce.
        const string header = """
            {"b":{"dtype":"BF16","shape":[2,1],"data_offsets":[8,12]},
             "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
             "empty":{"dtype":"F16","shape":[0],"data_offsets":[12,12]},
             "step":{"dtype":"I64","shape":[],"data_offsets":[12,20]},
             "__metadata__":{"format":"pt","source":"hand"}}
            """;
        var data = HandMade.Concat(HandMade.F32(1.5f, -2f), HandMade.U16(0x3F80, 0xC040), HandMade.I64(42));
        var path = _dir.File("hand.safetensors");
        File.WriteAllBytes(path, HandMade.File(header, data, pad));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal(["a", "b", "empty", "step"], file.Entries.Keys); // data order
        Assert.Equal(new TensorEntry("b", SafetensorsDType.BF16, [2, 1], 8, 12), file.Entries["b"], EntryComparer.Instance);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["source"] = "hand" }, file.Metadata);

        using var a = file.Load("a");
        Assert.Equal(new[] { 1.5f, -2f }, a.data<float>().ToArray());
        using var b = file.Load("b", ScalarType.Float32);
        Assert.Equal(new long[] { 2, 1 }, b.shape);
        Assert.Equal(new[] { 1f, -3f }, b.data<float>().ToArray());
        using var empty = file.Load("empty");
        Assert.Equal(new long[] { 0 }, empty.shape);
        Assert.Equal(ScalarType.Float16, empty.dtype);
        using var step = file.Load("step");
        Assert.Empty(step.shape);
        Assert.Equal(42L, step.item<long>());
        Assert.Equal(HandMade.U16(0x3F80, 0xC040), file.Bytes("b").ToArray());
    }

    [Fact]
    public void WrittenFileHasTheLayoutTheSpecificationDescribes()
    {
        var path = _dir.File("ours.safetensors");
        using (var w = tensor(new[] { 1.5f, -2f }))
        using (var s = tensor(1f).to(ScalarType.BFloat16))
            SafetensorsWriter.Write(path, [new("w", w), new("s", s)]);

        var bytes = File.ReadAllBytes(path);
        var n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8); // data section aligned
        var headerText = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Matches("^\\{.*\\} *$", headerText); // compact JSON padded with spaces only

        using var json = JsonDocument.Parse(headerText);
        var root = json.RootElement;
        Assert.Equal("pt", root.GetProperty("__metadata__").GetProperty("format").GetString());
        AssertEntry(root.GetProperty("w"), "F32", [2], [0, 8]);
        AssertEntry(root.GetProperty("s"), "BF16", [], [8, 10]);
        Assert.Equal(HandMade.Concat(HandMade.F32(1.5f, -2f), HandMade.U16(0x3F80)), bytes[(int)(8 + n)..]);
    }

    private static void AssertEntry(JsonElement entry, string dtype, long[] shape, long[] offsets)
    {
        Assert.Equal(dtype, entry.GetProperty("dtype").GetString());
        Assert.Equal(shape, entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(offsets, entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
    }

    /// <summary>Records compare arrays by reference; entries are equal when their contents are.</summary>
    private sealed class EntryComparer : IEqualityComparer<TensorEntry>
    {
        public static readonly EntryComparer Instance = new();

        public bool Equals(TensorEntry? x, TensorEntry? y) =>
            x is not null && y is not null && x.Name == y.Name && x.DType == y.DType && x.Shape.SequenceEqual(y.Shape) && x.DataBegin == y.DataBegin && x.DataEnd == y.DataEnd;

        public int GetHashCode(TensorEntry obj) => obj.Name.GetHashCode();
    }
}
