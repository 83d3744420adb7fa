using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Dllm.IO;

/// <summary>
/// A read-only memory map of a whole file, handing out bounds-checked spans of it.
/// Spans point into the map: they are valid only until <see cref="Dispose"/>.
/// </summary>
internal sealed class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly nint _start;
    private bool _disposed;

    public long Length { get; }

    /// <summary>Maps <paramref name="stream"/>, which must be non-empty (an empty file cannot be mapped); takes ownership of it.</summary>
    public MappedFile(FileStream stream)
    {
        Length = stream.Length;
        _map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        try
        {
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch
        {
            _map.Dispose();
            throw;
        }
        // The view holds the mapping alive until Dispose, so its base address stays valid as long as we do.
        _start = _view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (nint)_view.PointerOffset;
    }

    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset + length}) is outside the {Length}-byte file");
        if (length == 0) return ReadOnlySpan<byte>.Empty;
        // The project does not enable unsafe blocks; Unsafe.AddByteOffset from a null ref is the
        // unsafe-free spelling of "*(byte*)address", and the range was checked just above.
        ref var first = ref Unsafe.AddByteOffset(ref Unsafe.NullRef<byte>(), _start + (nint)offset);
        return MemoryMarshal.CreateReadOnlySpan(ref first, length);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.Dispose();
        _map.Dispose();
    }
}
