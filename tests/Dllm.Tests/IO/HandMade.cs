using System.Buffers.Binary;
using System.Text;
using static TorchSharp.torch;

namespace Dllm.Tests.IO;

/// <summary>Builds safetensors bytes without our writer, so reader tests check the format itself.</summary>
internal static class HandMade
{
    /// <summary>u64 little-endian header length, the header (optionally padded with spaces to 8), the data.</summary>
    public static byte[] File(string headerJson, byte[] data, bool pad = true)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var length = pad ? (header.Length + 7) / 8 * 8 : header.Length;
        var bytes = new byte[8 + length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)length);
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, length - header.Length).Fill((byte)' ');
        data.CopyTo(bytes, 8 + length);
        return bytes;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    public static byte[] F32(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    public static byte[] U16(params ushort[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    public static byte[] I64(params long[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>The raw bytes of a tensor in memory order.</summary>
    public static byte[] RawBytes(Tensor tensor)
    {
        if (tensor.numel() == 0) return [];
        using var cpu = tensor.cpu();
        using var contiguous = cpu.contiguous();
        return contiguous.bytes.ToArray();
    }
}
