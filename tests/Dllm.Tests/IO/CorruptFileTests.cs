using System.Buffers.Binary;
using Dllm.IO;

namespace Dllm.Tests.IO;

/// <summary>Every malformed file must fail on open with a DllmException that names the file and the fault.</summary>
public sealed class CorruptFileTests : IDisposable
{
    private const string ValidHeader = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""";
    private static readonly byte[] Valid = HandMade.File(ValidHeader, HandMade.F32(1, 2, 3, 4));
    private static readonly int HeaderLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(Valid);

    private readonly TestDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TheReferenceFileIsValid()
    {
        // Guards the cases below: each must fail because of its own change, not a broken baseline.
        var path = Save(Valid);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a", "b"], file.Entries.Keys);
        Assert.Equal(HandMade.F32(3, 4), file.Bytes("b").ToArray());
    }

    [Theory]
    [InlineData(0, "0 bytes long, shorter than the 8-byte header length")]
    [InlineData(3, "3 bytes long, shorter than the 8-byte header length")]
    [InlineData(7, "7 bytes long, shorter than the 8-byte header length")]
    [InlineData(12, "follow it (is the file truncated?)")]
    [InlineData(-1, "tensor 'a' ends at byte 8 of the data section, which holds only 0 bytes (is the file truncated?)")]
    [InlineData(-2, "tensor 'b' ends at byte 16 of the data section, which holds only 13 bytes (is the file truncated?)")]
    public void TruncatedFilesAreReportedAsSuch(int cut, string fragment)
    {
        // -1: cut exactly where the data starts; -2: cut 3 bytes short of the end.
        var length = cut switch { -1 => 8 + HeaderLength, -2 => Valid.Length - 3, _ => cut };
        AssertRejected(Valid[..length], fragment);
    }

    [Theory]
    [InlineData(1L << 40, "header length field says 1099511627776 bytes, more than the 100000000 allowed")]
    [InlineData(ulong.MaxValue, "more than the 100000000 allowed")]
    [InlineData(1000L, "header length field says 1000 bytes but only")]
    [InlineData(0L, "not valid JSON")]
    [InlineData(20L, "not valid JSON")]
    public void CorruptHeaderLengthIsReported(ulong declared, string fragment)
    {
        var bytes = (byte[])Valid.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declared);
        AssertRejected(bytes, fragment);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32",""", "the header is not valid JSON")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}""", "the header is not valid JSON")]
    [InlineData("""[1,2]""", "the header is a JSON Array, not an object")]
    [InlineData("""{"a":7}""", "tensor 'a' is a JSON Number, not an object")]
    [InlineData("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", "tensor 'a' has no dtype")]
    [InlineData("""{"a":{"dtype":"F32","data_offsets":[0,8]}}""", "tensor 'a' has no shape")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", "tensor 'a' has no data_offsets")]
    [InlineData("""{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", "tensor 'a' has unknown dtype \"F8_E4M3\" (supported: F32, BF16")]
    [InlineData("""{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}""", "tensor 'a' has unknown dtype \"f32\"")]
    [InlineData("""{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}""", "tensor 'a' has unknown dtype 32")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "shape of tensor 'a' holds the negative value -2")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}""", "shape of tensor 'a' holds 1.5, not an integer")]
    [InlineData("""{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}""", "shape of tensor 'a' is a JSON Number, not an array")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", "data_offsets of tensor 'a' is [0], not [begin, end]")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", "data_offsets of tensor 'a' holds the negative value -8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", "data_offsets [8, 0] of tensor 'a' begin after they end")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", "tensor 'a' ends at byte 24 of the data section, which holds only 16 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "tensors 'a' [0, 8) and 'b' [4, 12) overlap")]
    [InlineData("""{"big":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"inner":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}""", "tensors 'big' [0, 16) and 'inner' [4, 8) overlap")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "tensor 'a' has 8 bytes but F32 shape [3] needs 12")]
    [InlineData("""{"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}}""", "tensor 'a' has 16 bytes but BF16 shape [2, 2] needs 8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}""", "needs more than 2^63")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "key 'a' appears twice in the header")]
    [InlineData("""{"__metadata__":{"step":12}}""", "__metadata__ value of 'step' is a JSON Number, not a string")]
    [InlineData("""{"__metadata__":["pt"]}""", "__metadata__ is a JSON Array, not an object of strings")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4,0],"data_offsets":[0,4]}}""", "tensor 'a' has 4 bytes but F32 shape [4611686018427387904, 4, 0] needs 0")]
    public void BadHeadersAreReported(string header, string fragment) =>
        AssertRejected(HandMade.File(header, HandMade.F32(1, 2, 3, 4)), fragment);

    [Fact]
    public void InvalidUtf8InTheHeaderIsReported()
    {
        var bytes = HandMade.File("""{"aé":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", HandMade.F32(1, 2));
        bytes[Array.IndexOf(bytes, (byte)0xC3)] = 0xFF; // break the two-byte sequence of 'é'
        AssertRejected(bytes, "the header is not valid UTF-8");
    }

    [Fact]
    public void MissingFileIsADllmException()
    {
        var e = Assert.Throws<DllmException>(() => SafetensorsFile.Open(_dir.File("nope.safetensors")));
        Assert.Contains("cannot open safetensors file", e.Message);
        Assert.Contains("nope.safetensors", e.Message);
    }

    private string Save(byte[] bytes)
    {
        var path = _dir.File("x.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private void AssertRejected(byte[] bytes, string fragment)
    {
        var path = Save(bytes);
        var e = Assert.Throws<DllmException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(fragment, e.Message);
        Assert.Contains($"'{path}' is not a valid safetensors file", e.Message);
    }
}
