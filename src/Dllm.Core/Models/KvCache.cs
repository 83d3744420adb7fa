using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Per-request key/value cache: one [B, H_kv, capacity, D] buffer pair per layer. A forward writes its
/// new keys at [Length, Length + T) and attends over [0, Length + T); afterwards only the first
/// <c>commit</c> of those T positions become part of the cache. That lets the block decoder run a block
/// many times without committing it, then commit it (or commit it while starting the next block).
/// Created by the caller, passed to forwards, disposed with <c>using</c>; never a model field.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;
    private long _capacity;

    public KvCache(int layers, long initialCapacity = 256)
    {
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
        _capacity = Math.Max(1, initialCapacity);
    }

    /// <summary>Committed positions.</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Ragged attention over a right-aligned batch: when set, rows [Start, Start + Count) attend only to key columns
    /// from FirstColumn on (their earlier columns are left padding), each group in its own attention call. The
    /// groups cover every row in order. A decoder whose rows differ in length by more than a block sets it for its
    /// forwards, so a short row next to a long one no longer computes attention over the long one's width; null: one
    /// call over every column.
    /// </summary>
    public IReadOnlyList<RowGroup>? RowGroups { get; set; }

    /// <summary>
    /// Row groups for rows whose keys are the last <paramref name="keys"/>[r] of <paramref name="width"/> columns,
    /// longest first: a group starts at a row and takes the next rows while they are at most <paramref name="slack"/>
    /// shorter, so no row attends over more than <paramref name="slack"/> columns of padding. Null when one group
    /// holds every row, or when the rows are not longest first: one call over every column computes the same.
    /// </summary>
    public static RowGroup[]? GroupsByLength(IReadOnlyList<long> keys, long width, long slack)
    {
        for (var r = 1; r < keys.Count; r++)
            if (keys[r] > keys[r - 1]) return null;
        var groups = new List<RowGroup>();
        for (var start = 0; start < keys.Count;)
        {
            var end = start + 1;
            while (end < keys.Count && keys[start] - keys[end] <= slack) end++;
            groups.Add(new RowGroup(start, end - start, width - keys[start]));
            start = end;
        }
        return groups.Count > 1 ? [.. groups] : null;
    }

    public int Layers => _keys.Length;
    public long BatchSize => _keys[0]?.shape[0] ?? 0;

    /// <summary>Writes this forward's keys/values after the committed ones; returns views over committed + new.</summary>
    internal (Tensor Keys, Tensor Values) Extend(int layer, Tensor keys, Tensor values)
    {
        var t = keys.shape[2];
        EnsureCapacity(layer, keys, Length + t);
        var k = _keys[layer]!;
        var v = _values[layer]!;
        using (no_grad())
        {
            k.narrow(2, Length, t).copy_(keys);
            v.narrow(2, Length, t).copy_(values);
        }
        return (k.narrow(2, 0, Length + t), v.narrow(2, 0, Length + t));
    }

    /// <summary>Makes the first <paramref name="count"/> positions of the last forward permanent.</summary>
    internal void Commit(long count) => Length += count;

    /// <summary>
    /// An empty cache takes one row made of consecutive chunks (per layer keys and values [H_kv, C, D], as
    /// <see cref="Slice"/> gives them), which become its committed positions.
    /// </summary>
    internal void Load(IReadOnlyList<(Tensor[] Keys, Tensor[] Values)> chunks)
    {
        if (Length != 0 || _keys.Any(k => k is not null)) throw new InvalidOperationException("only an empty cache loads a prefix");
        var length = chunks.Sum(c => c.Keys[0].shape[1]);
        _capacity = Math.Max(_capacity, length);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();   // the row and column views; Replace keeps the buffers
        for (var i = 0; i < _keys.Length; i++)
        {
            var like = chunks[0].Keys[i];
            long[] shape = [1, like.shape[0], _capacity, like.shape[2]];
            var k = empty(shape, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
            var v = empty(shape, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
            long at = 0;
            foreach (var (keys, values) in chunks)
            {
                var c = keys[i].shape[1];
                k[0].narrow(1, at, c).copy_(keys[i]);
                v[0].narrow(1, at, c).copy_(values[i]);
                at += c;
            }
            Replace(ref _keys[i], k);
            Replace(ref _values[i], v);
        }
        Length = length;
    }

    /// <summary>An empty cache takes columns [start, start + count) of <paramref name="source"/>'s row as its one row's committed positions.</summary>
    internal void LoadRow(KvCache source, long row, long start, long count)
    {
        if (start < 0 || count <= 0 || start + count > source.Length) throw new ArgumentOutOfRangeException(nameof(count));
        if (row < 0 || row >= source.BatchSize) throw new ArgumentOutOfRangeException(nameof(row));
        // Views of the source, not copies: Load copies them into this cache's own buffers once.
        using var scope = NewDisposeScope();
        var keys = source._keys.Select(k => k![row].narrow(1, start, count)).ToArray();
        var values = source._values.Select(v => v![row].narrow(1, start, count)).ToArray();
        Load([(keys, values)]);
    }

    /// <summary>Copies of a row's committed columns [start, start + count): per layer keys and values [H_kv, count, D].</summary>
    internal (Tensor[] Keys, Tensor[] Values) Slice(long start, long count, long row = 0)
    {
        if (start < 0 || count <= 0 || start + count > Length) throw new ArgumentOutOfRangeException(nameof(count));
        if (row < 0 || row >= BatchSize) throw new ArgumentOutOfRangeException(nameof(row));
        using var noGrad = no_grad();
        var keys = new Tensor[_keys.Length];
        var values = new Tensor[_keys.Length];
        for (var i = 0; i < _keys.Length; i++)
        {
            using var scope = NewDisposeScope();
            keys[i] = _keys[i]![row].narrow(1, start, count).clone().DetachFromDisposeScope();
            values[i] = _values[i]![row].narrow(1, start, count).clone().DetachFromDisposeScope();
        }
        return (keys, values);
    }

    /// <summary>Keeps only the given batch rows (sequences that finished leave the batch).</summary>
    public void KeepRows(long[] rows)
    {
        using var index = tensor(rows, dtype: ScalarType.Int64, device: _keys[0]?.device ?? CPU);
        for (var i = 0; i < _keys.Length; i++)
        {
            if (_keys[i] is null) continue;
            Replace(ref _keys[i], _keys[i]!.index_select(0, index));
            Replace(ref _values[i], _values[i]!.index_select(0, index));
        }
    }

    /// <summary>
    /// Appends <paramref name="other"/>'s rows after this cache's, right-aligned: the side with fewer committed
    /// positions gets leading zero positions, which the caller must mask (their keys are not real). A side
    /// that has not run a forward yet holds no buffers, so both row counts are given.
    /// Leaves <paramref name="other"/> untouched; the caller disposes it.
    /// </summary>
    public void AppendRows(int rows, KvCache other, int otherRows)
    {
        if (other.Layers != Layers) throw new ArgumentException($"cannot join a {other.Layers}-layer cache to a {Layers}-layer one");
        var length = Math.Max(Length, other.Length);
        using var noGrad = no_grad();
        for (var i = 0; i < _keys.Length; i++)
        {
            if ((_keys[i] ?? other._keys[i]) is not { } like) continue;   // neither side has run a forward: nothing to join yet
            using var scope = NewDisposeScope();
            var capacity = Math.Max(Math.Max(_capacity, other._capacity), length);
            var shape = new Shape(like.shape[1], like.shape[3], like.dtype, like.device);
            var keys = cat([Aligned(_keys[i], rows, Length, length, capacity, shape), Aligned(other._keys[i], otherRows, other.Length, length, capacity, shape)], 0);
            var values = cat([Aligned(_values[i], rows, Length, length, capacity, shape), Aligned(other._values[i], otherRows, other.Length, length, capacity, shape)], 0);
            Replace(ref _keys[i], keys);
            Replace(ref _values[i], values);
            _capacity = capacity;
        }
        Length = length;
    }

    /// <summary>[rows, H, capacity, D]: the committed positions of <paramref name="buffer"/> ending at <paramref name="length"/>, zeros before.</summary>
    private static Tensor Aligned(Tensor? buffer, int rows, long committed, long length, long capacity, Shape like)
    {
        var result = zeros([rows, like.Heads, capacity, like.HeadDim], dtype: like.DType, device: like.Device);
        if (buffer is not null && committed > 0 && rows > 0)
            result.narrow(2, length - committed, committed).copy_(buffer.narrow(2, 0, committed));
        return result;
    }

    private readonly record struct Shape(long Heads, long HeadDim, ScalarType DType, Device Device);

    /// <summary>
    /// Forgets the leading positions that no row's key-validity mask <paramref name="valid"/> [R, S] marks (left padding
    /// that only rows which left the batch used) and returns the mask without them (the same tensor when none is unused).
    /// </summary>
    public Tensor TrimUnusedFront(Tensor valid)
    {
        bool[] used;
        using (var any = valid.any(0))
        using (var host = any.cpu()) used = host.data<bool>().ToArray();
        var unused = Array.IndexOf(used, true) is var first and >= 0 ? first : used.Length;
        if (unused == 0) return valid;
        TrimFront(unused);
        return valid.narrow(1, unused, used.Length - unused);
    }

    /// <summary>Forgets the first <paramref name="count"/> committed positions of every row (padding no row attends to any more).</summary>
    public void TrimFront(long count)
    {
        if (count < 0 || count > Length) throw new ArgumentOutOfRangeException(nameof(count));
        if (count == 0) return;
        var kept = Length - count;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();   // the narrowed views; Replace keeps the new buffers
        for (var i = 0; i < _keys.Length; i++)
        {
            if (_keys[i] is null) continue;
            Replace(ref _keys[i], Shifted(_keys[i]!, count, kept));
            Replace(ref _values[i], Shifted(_values[i]!, count, kept));
        }
        Length = kept;
    }

    private static Tensor Shifted(Tensor buffer, long count, long kept)
    {
        var result = empty(buffer.shape, dtype: buffer.dtype, device: buffer.device);
        if (kept > 0) result.narrow(2, 0, kept).copy_(buffer.narrow(2, count, kept));
        return result;
    }

    private void EnsureCapacity(int layer, Tensor like, long needed)
    {
        if (_keys[layer] is { } existing && existing.shape[2] >= needed) return;
        var capacity = Math.Max(_capacity, needed);
        while (capacity < needed) capacity *= 2;
        if (_keys[layer] is not null) capacity = Math.Max(capacity, _keys[layer]!.shape[2] * 2);
        _capacity = Math.Max(_capacity, capacity);
        long[] shape = [like.shape[0], like.shape[1], capacity, like.shape[3]];
        var k = empty(shape, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
        var v = empty(shape, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
        if (_keys[layer] is { } oldK && Length > 0)
        {
            using (no_grad())
            {
                k.narrow(2, 0, Length).copy_(oldK.narrow(2, 0, Length));
                v.narrow(2, 0, Length).copy_(_values[layer]!.narrow(2, 0, Length));
            }
        }
        Replace(ref _keys[layer], k);
        Replace(ref _values[layer], v);
    }

    private static void Replace(ref Tensor? slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        old?.Dispose();
    }

    public void Dispose()
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            _keys[i]?.Dispose(); _keys[i] = null;
            _values[i]?.Dispose(); _values[i] = null;
        }
    }
}

/// <summary>Rows [Start, Start + Count) of a batch, whose keys begin at column FirstColumn (see <see cref="KvCache.RowGroups"/>).</summary>
public readonly record struct RowGroup(int Start, int Count, long FirstColumn);
