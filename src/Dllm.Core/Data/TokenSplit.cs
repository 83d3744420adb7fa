using System.Buffers.Binary;
using Dllm.IO;

namespace Dllm.Data;

/// <summary>
/// One split of a token cache, memory-mapped: the OS pages tokens in and out as they are read, so a corpus far
/// larger than RAM costs only address space. Reads are thread-safe (a prefetching loader may share it).
/// </summary>
internal sealed class TokenSplit : IDisposable
{
    // An empty file cannot be mapped; an empty split simply has no map.
    private readonly MappedFile? _tokens;
    private readonly MappedFile? _documents;

    private TokenSplit(string name, SplitCounts counts, MappedFile? tokens, MappedFile? documents)
    {
        Name = name;
        Tokens = counts.Tokens;
        Documents = counts.Documents;
        _tokens = tokens;
        _documents = documents;
    }

    /// <summary>"train" or "valid", for messages.</summary>
    public string Name { get; }
    public long Tokens { get; }
    public long Documents { get; }

    /// <exception cref="DllmException">A file is missing or its size disagrees with the manifest.</exception>
    public static TokenSplit Open(string folder, string name, SplitCounts counts)
    {
        MappedFile? tokens = Map(SplitFiles.Tokens(folder, name), counts.Tokens * sizeof(int), $"{counts.Tokens} tokens");
        try
        {
            MappedFile? documents = Map(SplitFiles.Documents(folder, name), counts.Documents * sizeof(long), $"{counts.Documents} documents");
            var split = new TokenSplit(name, counts, tokens, documents);
            if (split.Documents > 0 && split.DocumentStart(0) != 0)
                throw new DllmException($"'{SplitFiles.Documents(folder, name)}' is damaged: the first document does not start at 0");
            return split;
        }
        catch
        {
            tokens?.Dispose();
            throw;
        }
    }

    /// <summary>Copies tokens [<paramref name="start"/>, start + destination.Length) into <paramref name="destination"/>.</summary>
    public void ReadTokens(long start, Span<int> destination)
    {
        if (destination.IsEmpty) return;
        ReadOnlySpan<byte> bytes = _tokens!.Span(start * sizeof(int), destination.Length * sizeof(int));
        for (int i = 0; i < destination.Length; i++)
            destination[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(i * sizeof(int))..]);
    }

    /// <summary>Token offset where document <paramref name="document"/> starts; <see cref="Tokens"/> for one past the last.</summary>
    public long DocumentStart(long document)
    {
        if (document == Documents) return Tokens;
        return BinaryPrimitives.ReadInt64LittleEndian(_documents!.Span(document * sizeof(long), sizeof(long)));
    }

    /// <summary>The document holding token <paramref name="position"/>: the last one starting at or before it.</summary>
    public long DocumentAt(long position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, Tokens);
        long low = 0, high = Documents - 1;
        while (low < high)
        {
            long middle = low + (high - low + 1) / 2;
            if (DocumentStart(middle) <= position) low = middle;
            else high = middle - 1;
        }
        return low;
    }

    public void Dispose()
    {
        _tokens?.Dispose();
        _documents?.Dispose();
    }

    private static MappedFile? Map(string path, long expectedBytes, string expected)
    {
        var file = new FileInfo(path);
        if (!file.Exists) throw new DllmException($"token cache file '{path}' is missing");
        if (file.Length != expectedBytes)
            throw new DllmException($"token cache file '{path}' is {file.Length} bytes, but the manifest says {expected} ({expectedBytes} bytes); the cache is damaged");
        if (expectedBytes == 0) return null;
        try
        {
            return new MappedFile(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DllmException($"cannot map token cache file '{path}': {e.Message}", e);
        }
    }
}
