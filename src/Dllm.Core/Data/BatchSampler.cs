namespace Dllm.Data;

/// <summary>
/// Deals batches of windows: epoch e visits every window once, in a Fisher-Yates order seeded by (seed, e), and
/// batches are consecutive slices of that order. A batch that runs past the end of an epoch continues with the
/// start of the next one, so every epoch still visits each window exactly once and nothing is dropped. The
/// position is two integers, so resuming from a saved one gives exactly the batches an uninterrupted run would.
/// </summary>
public sealed class BatchSampler
{
    private readonly PackedSequences _sequences;
    private readonly int _batchSize;
    private readonly long _seed;
    private long _epoch;
    private long _offset;
    private int[] _order;

    /// <exception cref="DllmException"><paramref name="start"/> does not fit these sequences (the data changed since it was saved?).</exception>
    public BatchSampler(PackedSequences sequences, int batchSize, long seed, DataPosition? start = null)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (batchSize <= 0) throw new DllmException($"batch size must be positive, got {batchSize}");
        // The order is held as int[] (4 bytes a window); 2^31 windows would be terabytes of tokens.
        if (sequences.Count > Array.MaxLength)
            throw new DllmException($"{sequences.Count} sequences per epoch is more than the sampler supports ({Array.MaxLength})");
        start ??= new DataPosition(0, 0);
        if (start.Epoch < 0 || start.Offset < 0 || start.Offset >= sequences.Count)
            throw new DllmException(
                $"cannot resume at epoch {start.Epoch}, offset {start.Offset}: an epoch has {sequences.Count} sequences (of length {sequences.SequenceLength}); was the data or sequence length changed?");
        _sequences = sequences;
        _batchSize = batchSize;
        _seed = seed;
        _epoch = start.Epoch;
        _offset = start.Offset;
        _order = EpochOrder.Permutation((int)sequences.Count, seed, _epoch);
    }

    /// <summary>Where the next batch starts.</summary>
    public DataPosition Position => new(_epoch, _offset);

    /// <summary>The next batch, row-major [batch size, sequence length]; row r is one window's tokens and document ids.</summary>
    public (long[] Tokens, long[] DocumentIds, int Rows, int Columns) Next()
    {
        int columns = _sequences.SequenceLength;
        var tokens = new long[(long)_batchSize * columns];
        var documentIds = new long[tokens.Length];
        for (int row = 0; row < _batchSize; row++)
        {
            var (windowTokens, windowIds) = _sequences.Get(_order[_offset]);
            for (int i = 0; i < columns; i++)
            {
                tokens[row * columns + i] = windowTokens[i];
                documentIds[row * columns + i] = windowIds[i];
            }
            Advance();
        }
        return (tokens, documentIds, _batchSize, columns);
    }

    private void Advance()
    {
        if (++_offset < _order.Length) return;
        _epoch++;
        _offset = 0;
        _order = EpochOrder.Permutation(_order.Length, _seed, _epoch);
    }
}
