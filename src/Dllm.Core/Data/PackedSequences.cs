namespace Dllm.Data;

/// <summary>
/// A split's token stream cut into non-overlapping windows of <see cref="SequenceLength"/> tokens; the last,
/// partial window is dropped. Each token carries a document id that counts documents from 0 within its window,
/// so a document cut by a window boundary gets one id in each window; the trainer turns the ids into the
/// document mask (METHOD.md §2, "Document mask").
/// </summary>
public sealed class PackedSequences
{
    private readonly TokenSplit _split;

    internal PackedSequences(TokenSplit split, int sequenceLength)
    {
        if (sequenceLength <= 0) throw new DllmException($"sequence length must be positive, got {sequenceLength}");
        if (split.Tokens < sequenceLength)
            throw new DllmException(
                $"the {split.Name} split has {split.Tokens} tokens ({split.Documents} documents), but one sequence of length {sequenceLength} needs {sequenceLength}; add data or use a shorter sequence length");
        _split = split;
        SequenceLength = sequenceLength;
        Count = split.Tokens / sequenceLength;
    }

    public long Count { get; }
    public int SequenceLength { get; }

    /// <summary>Window <paramref name="index"/>: tokens [index·L, (index+1)·L) and their per-window document ids.</summary>
    public (int[] Tokens, int[] DocumentIds) Get(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        long start = index * SequenceLength;
        var tokens = new int[SequenceLength];
        var documentIds = new int[SequenceLength];
        _split.ReadTokens(start, tokens);

        // Ids come from the document offsets, not from EOS tokens: a document's text may itself contain the EOS string.
        long document = _split.DocumentAt(start);
        long nextStart = _split.DocumentStart(document + 1);
        int id = 0;
        for (int i = 0; i < SequenceLength; i++)
        {
            while (start + i >= nextStart)
            {
                id++;
                document++;
                nextStart = _split.DocumentStart(document + 1);
            }
            documentIds[i] = id;
        }
        return (tokens, documentIds);
    }
}
