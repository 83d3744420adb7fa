using System.Buffers.Binary;

namespace Dllm.Data;

/// <summary>
/// Appends documents to one split's files: &lt;name&gt;.tokens (int32 little-endian token ids) and &lt;name&gt;.docs
/// (int64 little-endian start offset of each document in the token file). Writes go straight to disk through a
/// small buffer, so a split of any size needs constant memory.
/// </summary>
internal sealed class SplitWriter : IDisposable
{
    private const int BufferBytes = 1 << 16;
    private readonly FileStream _tokens;
    private readonly FileStream _documents;
    private readonly byte[] _buffer = new byte[BufferBytes];
    private int _buffered;

    public SplitWriter(string folder, string name)
    {
        _tokens = Create(SplitFiles.Tokens(folder, name));
        _documents = Create(SplitFiles.Documents(folder, name));
    }

    public long Tokens { get; private set; }
    public long Documents { get; private set; }

    /// <summary>Adds one document: its tokens, then <paramref name="eos"/>, which ends it.</summary>
    public void Add(IReadOnlyList<int> tokens, int eos)
    {
        Span<byte> start = stackalloc byte[sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(start, Tokens);
        _documents.Write(start);
        for (int i = 0; i < tokens.Count; i++) Append(tokens[i]);
        Append(eos);
        Tokens += tokens.Count + 1;
        Documents++;
    }

    /// <summary>Writes what is buffered and forces both files to disk; the manifest must not name data that a crash could lose.</summary>
    public SplitCounts Complete()
    {
        FlushBuffer();
        _tokens.Flush(flushToDisk: true);
        _documents.Flush(flushToDisk: true);
        return new SplitCounts(Tokens, Documents);
    }

    public void Dispose()
    {
        _tokens.Dispose();
        _documents.Dispose();
    }

    private void Append(int token)
    {
        if (_buffered == BufferBytes) FlushBuffer();
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_buffered), token);
        _buffered += sizeof(int);
    }

    private void FlushBuffer()
    {
        _tokens.Write(_buffer, 0, _buffered);
        _buffered = 0;
    }

    private static FileStream Create(string path) =>
        new(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
}
