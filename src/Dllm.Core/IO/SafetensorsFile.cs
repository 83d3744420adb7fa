using System.Buffers.Binary;
using TorchSharp;

namespace Dllm.IO;

/// <summary>
/// One .safetensors file, memory-mapped and validated on open, so a later read cannot run off
/// the end of the file or return a tensor made of someone else's bytes.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private readonly MappedFile _map;
    private readonly long _dataStart;

    public string Path { get; }

    /// <summary>The tensors, in the order of their data in the file; excludes "__metadata__".</summary>
    public IReadOnlyDictionary<string, TensorEntry> Entries { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(string path, MappedFile map, long dataStart, SafetensorsHeader header)
    {
        Path = path;
        _map = map;
        _dataStart = dataStart;
        // A Dictionary enumerates in insertion order while nothing is removed, and these are never changed.
        Entries = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal).AsReadOnly();
        Metadata = header.Metadata.ToDictionary(StringComparer.Ordinal).AsReadOnly();
    }

    public static SafetensorsFile Open(string path)
    {
        // Raw bytes are handed to torch as they are; safetensors is little-endian by definition.
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors I/O needs a little-endian machine");
        var full = System.IO.Path.GetFullPath(path);
        FileStream stream;
        try
        {
            stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DllmException($"cannot open safetensors file '{full}': {e.Message}", e);
        }

        MappedFile? map = null;
        try
        {
            var length = stream.Length;
            if (length < 8)
                throw SafetensorsHeader.Invalid(full, $"it is {length} bytes long, shorter than the 8-byte header length");
            map = new MappedFile(stream);
            var (header, dataStart) = ReadHeader(full, map);
            return new SafetensorsFile(full, map, dataStart, header);
        }
        catch
        {
            if (map is null) stream.Dispose();
            else map.Dispose();
            throw;
        }
    }

    private static (SafetensorsHeader Header, long DataStart) ReadHeader(string path, MappedFile map)
    {
        var declared = BinaryPrimitives.ReadUInt64LittleEndian(map.Span(0, 8));
        if (declared > SafetensorsHeader.MaxHeaderBytes)
            throw SafetensorsHeader.Invalid(path, $"the header length field says {declared} bytes, more than the {SafetensorsHeader.MaxHeaderBytes} allowed (corrupt length, or not a safetensors file)");
        var headerLength = (long)declared;
        if (headerLength > map.Length - 8)
            throw SafetensorsHeader.Invalid(path, $"the header length field says {headerLength} bytes but only {map.Length - 8} follow it (is the file truncated?)");
        // The JSON parser wants memory it can keep, and a header is small: copy it out of the map.
        var json = map.Span(8, (int)headerLength).ToArray();
        var dataStart = 8 + headerLength;
        return (SafetensorsHeader.Parse(path, json, map.Length - dataStart), dataStart);
    }

    public TensorEntry Entry(string name) =>
        Entries.TryGetValue(name, out var entry) ? entry : throw new DllmException($"tensor '{name}' is not in '{Path}'");

    /// <summary>
    /// The raw little-endian bytes of one tensor, straight from the map: valid only while this file
    /// is open. Tensors over 2 GB do not fit a span; use <see cref="Load"/> for those.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var entry = Entry(name);
        if (entry.ByteLength > int.MaxValue)
            throw new DllmException($"tensor '{name}' in '{Path}' is {entry.ByteLength} bytes, too large for a span; load it as a tensor instead");
        return _map.Span(_dataStart + entry.DataBegin, (int)entry.ByteLength);
    }

    /// <summary>
    /// A new tensor that owns a copy of the bytes (the file may be closed afterwards), in the file's
    /// dtype unless <paramref name="dtype"/> asks for a cast, which happens after the exact copy.
    /// </summary>
    public torch.Tensor Load(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        var entry = Entry(name);
        using var scope = torch.NewDisposeScope();
        var tensor = torch.empty(entry.Shape, entry.DType.ToScalarType(), torch.CPU);
        var start = _dataStart + entry.DataBegin;
        TensorChunks.ForEach(tensor, (offset, chunk) => _map.Span(start + offset, chunk.Length).CopyTo(chunk));
        if (dtype is { } type && type != tensor.dtype) tensor = tensor.to_type(type);
        if (device is not null && device.type != DeviceType.CPU) tensor = tensor.to(device);
        return tensor.MoveToOuterDisposeScope();
    }

    public void Dispose() => _map.Dispose();
}
