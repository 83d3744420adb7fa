using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Key/value cache of a batch of rows: per layer, the keys and values every forward wrote, of which the first
/// <see cref="Length"/> columns are committed. A forward writes its T new keys at [Length, Length + T) and attends
/// over [0, Length + T); afterwards only the first <c>commit</c> of those T positions become part of the cache.
/// That lets the block decoder run a block many times without committing it, then commit it (or commit it while
/// starting the next block). Created by the caller, passed to forwards, disposed with <c>using</c>; never a model field.
/// <para>
/// Rows are right-aligned: every row's keys end at column <see cref="Length"/>, and a shorter row's earlier columns
/// are padding its mask hides. The rows are stored in segments of consecutive rows, each holding only the last
/// columns its rows use: a short row beside a long one neither attends over nor stores the long one's width. When
/// the decoder asks for <see cref="RowGroups"/>, the next forward rearranges the segments into those groups (a copy,
/// only when the groups changed: rows joined, left or were reordered); without groups, one segment holds every row.
/// A single request is one segment of one row, as before batching existed.
/// </para>
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly int _layers;
    private readonly long _initialCapacity;
    private List<Segment> _segments = [];
    private bool _allocated;

    public KvCache(int layers, long initialCapacity = 256)
    {
        _layers = layers;
        _initialCapacity = Math.Max(1, initialCapacity);
    }

    /// <summary>Committed positions: the width of the right-aligned batch (the longest row's).</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Ragged attention over the right-aligned batch: when set, rows [Start, Start + Count) attend only to key columns
    /// from FirstColumn on (their earlier columns are left padding), each group in its own attention call, and the
    /// cache stores each group's rows with only those columns. The groups cover every row in order. A decoder whose
    /// rows differ in length by more than a block sets it for its forwards; null: one call over every column, one
    /// segment (rectangular).
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

    public int Layers => _layers;

    /// <summary>Rows in the batch (0 before the first forward, join or load).</summary>
    public long BatchSize => _segments.Sum(s => (long)s.Count);

    /// <summary>Bytes the cache's key and value buffers hold, spare capacity included.</summary>
    public long AllocatedBytes => _segments.Sum(s => s.Bytes);

    /// <summary>Committed key columns stored over all rows (a row's padding within its segment counts): the cache's memory in columns.</summary>
    public long StoredColumns => _segments.Sum(s => s.Count * s.Columns);

    /// <summary>
    /// Writes this forward's keys/values after the committed ones; returns, per segment, its rows and first key
    /// column with views over its columns from there to the end of this forward's (committed + new).
    /// </summary>
    internal IReadOnlyList<(RowGroup Rows, Tensor Keys, Tensor Values)> Extend(int layer, Tensor keys, Tensor values)
    {
        var t = keys.shape[2];
        if (layer == 0) Arrange(keys.shape[0], t);
        else if (BatchSize != keys.shape[0]) throw new InvalidOperationException($"the cache holds {BatchSize} rows, the forward has {keys.shape[0]}");
        var parts = new (RowGroup, Tensor, Tensor)[_segments.Count];
        using var noGrad = no_grad();
        for (var i = 0; i < _segments.Count; i++)
        {
            var s = _segments[i];
            s.EnsureCapacity(layer, keys, s.Columns + t, Grow(s.Columns + t));
            var (k, v) = (s.Keys[layer]!, s.Values[layer]!);
            var (rowsK, rowsV) = _segments.Count == 1 ? (keys, values) : (keys.narrow(0, s.Start, s.Count), values.narrow(0, s.Start, s.Count));
            k.narrow(2, s.Columns, t).copy_(rowsK);
            v.narrow(2, s.Columns, t).copy_(rowsV);
            parts[i] = (new RowGroup(s.Start, s.Count, Length - s.Columns), k.narrow(2, 0, s.Columns + t), v.narrow(2, 0, s.Columns + t));
        }
        if (layer == _layers - 1) _allocated = true;
        return parts;
    }

    /// <summary>Makes the first <paramref name="count"/> positions of the last forward permanent.</summary>
    internal void Commit(long count)
    {
        Length += count;
        foreach (var s in _segments) s.Columns += count;
    }

    /// <summary>
    /// Before a forward's first layer: one segment per requested row group (one for every row without groups), each
    /// holding the columns from its group's first key on. Rearranged only when that is not already the layout.
    /// </summary>
    private void Arrange(long rows, long t)
    {
        if (_segments.Count == 0) _segments.Add(new Segment(0, (int)rows, 0, _layers));
        if (BatchSize != rows) throw new InvalidOperationException($"the cache holds {BatchSize} rows, the forward has {rows}");
        var wanted = RowGroups is { Count: > 0 } groups
            ? groups.Select(g => (g.Start, g.Count, Columns: Length - g.FirstColumn)).ToArray()
            : [(0, (int)rows, Columns: _segments.Max(s => s.Columns))];
        if (wanted.Sum(w => (long)w.Count) != rows || wanted.Select(w => w.Start).SequenceEqual(Starts(wanted.Select(w => w.Count))) is false)
            throw new ArgumentException("the row groups must cover every row in order");
        // A segment never holds more columns than its rows' sources: columns before those are no row's keys.
        for (var i = 0; i < wanted.Length; i++)
            wanted[i].Columns = Math.Clamp(wanted[i].Columns, 0, Overlapping(wanted[i].Start, wanted[i].Count).Max(s => s.Columns));
        if (wanted.Length == _segments.Count && wanted.Zip(_segments).All(p => p.First.Start == p.Second.Start && p.First.Count == p.Second.Count && p.First.Columns == p.Second.Columns))
            return;

        var next = wanted.Select(w => new Segment(w.Start, w.Count, w.Columns, _layers)).ToList();
        using var noGrad = no_grad();
        // Layer by layer, so at most one layer's worth of keys exists twice.
        for (var layer = 0; layer < _layers; layer++)
        {
            var like = _segments.Select(s => s.Keys[layer]).FirstOrDefault(k => k is not null);
            if (like is null) continue;   // no forward has written this layer yet (every segment is empty)
            foreach (var n in next)
            {
                using var scope = NewDisposeScope();
                var capacity = Grow(n.Columns + t);
                var k = empty([n.Count, like.shape[1], capacity, like.shape[3]], dtype: like.dtype, device: like.device);
                var v = empty([n.Count, like.shape[1], capacity, like.shape[3]], dtype: like.dtype, device: like.device);
                foreach (var s in Overlapping(n.Start, n.Count))
                {
                    var (from, to) = (Math.Max(n.Start, s.Start), Math.Min(n.Start + n.Count, s.Start + s.Count));
                    var take = Math.Min(s.Columns, n.Columns);
                    var (kRows, vRows) = (k.narrow(0, from - n.Start, to - from), v.narrow(0, from - n.Start, to - from));
                    if (take < n.Columns)
                    {
                        kRows.narrow(2, 0, n.Columns - take).zero_();
                        vRows.narrow(2, 0, n.Columns - take).zero_();
                    }
                    if (take == 0) continue;
                    kRows.narrow(2, n.Columns - take, take).copy_(s.Keys[layer]!.narrow(0, from - s.Start, to - from).narrow(2, s.Columns - take, take));
                    vRows.narrow(2, n.Columns - take, take).copy_(s.Values[layer]!.narrow(0, from - s.Start, to - from).narrow(2, s.Columns - take, take));
                }
                n.Keys[layer] = k.DetachFromDisposeScope();
                n.Values[layer] = v.DetachFromDisposeScope();
            }
            foreach (var s in _segments) s.DisposeLayer(layer);
        }
        _segments = next;
    }

    private static IEnumerable<int> Starts(IEnumerable<int> counts)
    {
        var at = 0;
        foreach (var c in counts) { yield return at; at += c; }
    }

    private IEnumerable<Segment> Overlapping(int start, int count) =>
        _segments.Where(s => s.Start < start + count && start < s.Start + s.Count);

    private Segment SegmentOf(long row)
    {
        if (row < 0 || row >= BatchSize) throw new ArgumentOutOfRangeException(nameof(row));
        return _segments.First(s => row < s.Start + s.Count);
    }

    /// <summary>
    /// Capacity for <paramref name="needed"/> columns with room to grow: half as much again (at least 16), so a row that
    /// grows a token a step reallocates rarely. The cache's first buffers get at least the initial capacity it was made with.
    /// </summary>
    private long Grow(long needed)
    {
        var capacity = needed + Math.Max(needed / 2, 16);
        return _allocated ? capacity : Math.Max(_initialCapacity, capacity);
    }

    /// <summary>
    /// An empty cache takes one row made of consecutive chunks (per layer keys and values [H_kv, C, D], as
    /// <see cref="Slice"/> gives them), which become its committed positions.
    /// </summary>
    internal void Load(IReadOnlyList<(Tensor[] Keys, Tensor[] Values)> chunks)
    {
        if (Length != 0 || _segments.Count != 0) throw new InvalidOperationException("only an empty cache loads a prefix");
        var length = chunks.Sum(c => c.Keys[0].shape[1]);
        var segment = new Segment(0, 1, length, _layers);
        using var noGrad = no_grad();
        for (var i = 0; i < _layers; i++)
        {
            using var scope = NewDisposeScope();   // the row and column views
            var like = chunks[0].Keys[i];
            long[] shape = [1, like.shape[0], Math.Max(_initialCapacity, length), like.shape[2]];
            var k = empty(shape, dtype: like.dtype, device: like.device);
            var v = empty(shape, dtype: like.dtype, device: like.device);
            long at = 0;
            foreach (var (keys, values) in chunks)
            {
                var c = keys[i].shape[1];
                k[0].narrow(1, at, c).copy_(keys[i]);
                v[0].narrow(1, at, c).copy_(values[i]);
                at += c;
            }
            segment.Keys[i] = k.DetachFromDisposeScope();
            segment.Values[i] = v.DetachFromDisposeScope();
        }
        _segments.Add(segment);
        Length = length;
        _allocated = true;
    }

    /// <summary>An empty cache takes columns [start, start + count) of <paramref name="source"/>'s row as its one row's committed positions.</summary>
    internal void LoadRow(KvCache source, long row, long start, long count)
    {
        if (start < 0 || count <= 0 || start + count > source.Length) throw new ArgumentOutOfRangeException(nameof(count));
        // Views of the source, not copies: Load copies them into this cache's own buffers once.
        using var scope = NewDisposeScope();
        var (keys, values) = source.RowColumns(row, start, count);
        Load([(keys, values)]);
    }

    /// <summary>Copies of a row's committed columns [start, start + count): per layer keys and values [H_kv, count, D].</summary>
    internal (Tensor[] Keys, Tensor[] Values) Slice(long start, long count, long row = 0)
    {
        if (start < 0 || count <= 0 || start + count > Length) throw new ArgumentOutOfRangeException(nameof(count));
        using var noGrad = no_grad();
        var keys = new Tensor[_layers];
        var values = new Tensor[_layers];
        using var scope = NewDisposeScope();
        var (k, v) = RowColumns(row, start, count);
        for (var i = 0; i < _layers; i++)
        {
            keys[i] = k[i].clone().DetachFromDisposeScope();
            values[i] = v[i].clone().DetachFromDisposeScope();
        }
        return (keys, values);
    }

    /// <summary>Views of a row's committed columns [start, start + count) per layer, [H_kv, count, D]; they must be keys the row stores.</summary>
    private (Tensor[] Keys, Tensor[] Values) RowColumns(long row, long start, long count)
    {
        var s = SegmentOf(row);
        var local = start - (Length - s.Columns);
        if (local < 0) throw new ArgumentOutOfRangeException(nameof(start), start, $"row {row} stores only columns from {Length - s.Columns} on");
        return (s.Keys.Select(k => k![row - s.Start].narrow(1, local, count)).ToArray(),
                s.Values.Select(v => v![row - s.Start].narrow(1, local, count)).ToArray());
    }

    /// <summary>
    /// Keeps only the given batch rows, in the given order (sequences that finished leave the batch, or the rows are
    /// reordered). A segment whose rows all stay, in order and together, is kept as it is; the others copy the rows
    /// that stay.
    /// </summary>
    public void KeepRows(long[] rows)
    {
        var next = new List<Segment>();
        var reused = new HashSet<Segment>();
        using var noGrad = no_grad();
        for (var i = 0; i < rows.Length;)
        {
            var source = SegmentOf(rows[i]);
            var end = i + 1;
            while (end < rows.Length && rows[end] >= source.Start && rows[end] < source.Start + source.Count) end++;
            var local = rows[i..end].Select(r => r - source.Start).ToArray();
            if (local.Length == source.Count && local.Select((r, j) => r == j).All(x => x) && reused.Add(source))
            {
                next.Add(source.MovedTo(i));
            }
            else
            {
                using var index = tensor(local, dtype: ScalarType.Int64, device: source.Device);
                var copy = new Segment(i, local.Length, source.Columns, _layers);
                for (var l = 0; l < _layers; l++)
                {
                    copy.Keys[l] = source.Keys[l]?.index_select(0, index).DetachFromDisposeScope();
                    copy.Values[l] = source.Values[l]?.index_select(0, index).DetachFromDisposeScope();
                }
                next.Add(copy);
            }
            i = end;
        }
        foreach (var s in _segments)
            if (!reused.Contains(s)) s.Dispose();
        _segments = next;
    }

    /// <summary>
    /// Appends <paramref name="other"/>'s rows after this cache's, right-aligned: the side with fewer committed
    /// positions starts later, and its rows' earlier columns are padding the caller must mask. A side that has not
    /// run a forward yet holds no rows, so both row counts are given. Takes <paramref name="other"/>'s buffers (no
    /// copy): it is left empty, and the caller disposes it.
    /// </summary>
    public void AppendRows(int rows, KvCache other, int otherRows)
    {
        if (other.Layers != Layers) throw new ArgumentException($"cannot join a {other.Layers}-layer cache to a {Layers}-layer one");
        if (_segments.Count == 0 && rows > 0) _segments.Add(new Segment(0, rows, 0, _layers));
        if (BatchSize != rows) throw new ArgumentException($"the cache holds {BatchSize} rows, not {rows}", nameof(rows));
        if (other._segments.Count == 0 && otherRows > 0) other._segments.Add(new Segment(0, otherRows, 0, _layers));
        if (other.BatchSize != otherRows) throw new ArgumentException($"the joining cache holds {other.BatchSize} rows, not {otherRows}", nameof(otherRows));
        // Right-aligned: every row's keys end at the new length whichever side was longer, so nothing moves.
        foreach (var s in other._segments) _segments.Add(s.MovedTo(rows + s.Start));
        other._segments = [];
        _allocated |= other._allocated;
        Length = Math.Max(Length, other.Length);
        other.Length = 0;
    }

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
        Length -= count;
        using var noGrad = no_grad();
        // Right-aligned: only a segment that stored some of the forgotten columns changes.
        foreach (var s in _segments)
            if (s.Columns > Length) s.DropFront(s.Columns - Length);
    }

    public void Dispose()
    {
        foreach (var s in _segments) s.Dispose();
        _segments = [];
    }

    /// <summary>Rows [Start, Start + Count) of the batch with per layer keys/values [Count, H_kv, capacity, D]; the committed columns are the batch's last <see cref="Columns"/>.</summary>
    private sealed class Segment(int start, int count, long columns, int layers) : IDisposable
    {
        public int Start { get; } = start;
        public int Count { get; } = count;
        public long Columns { get; set; } = columns;
        public Tensor?[] Keys { get; private init; } = new Tensor?[layers];
        public Tensor?[] Values { get; private init; } = new Tensor?[layers];

        public Device Device => Keys.FirstOrDefault(k => k is not null)?.device ?? CPU;
        public long Bytes => Keys.Concat(Values).Sum(t => t is null ? 0 : t.NumberOfElements * t.ElementSize);

        /// <summary>The same buffers as rows starting at <paramref name="start"/> (this segment gives them up).</summary>
        public Segment MovedTo(int start) => new(start, Count, Columns, 0) { Keys = Keys, Values = Values };

        /// <summary>Makes room for <paramref name="needed"/> columns in <paramref name="layer"/>, reallocating at <paramref name="capacity"/> when short.</summary>
        public void EnsureCapacity(int layer, Tensor like, long needed, long capacity)
        {
            if (Keys[layer] is { } existing && existing.shape[2] >= needed) return;
            long[] shape = [Count, like.shape[1], capacity, like.shape[3]];
            var k = empty(shape, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
            var v = empty(shape, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
            if (Keys[layer] is { } oldK && Columns > 0)
            {
                k.narrow(2, 0, Columns).copy_(oldK.narrow(2, 0, Columns));
                v.narrow(2, 0, Columns).copy_(Values[layer]!.narrow(2, 0, Columns));
            }
            else if (Columns > 0)
            {
                // Rows that joined with no keys stored: their committed columns are padding.
                k.narrow(2, 0, Columns).zero_();
                v.narrow(2, 0, Columns).zero_();
            }
            DisposeLayer(layer);
            (Keys[layer], Values[layer]) = (k, v);
        }

        /// <summary>Forgets the first <paramref name="count"/> committed columns (a copy, keeping the capacity).</summary>
        public void DropFront(long count)
        {
            var kept = Columns - count;
            for (var l = 0; l < Keys.Length; l++)
            {
                if (Keys[l] is null) continue;
                using var scope = NewDisposeScope();
                Keys[l] = Shifted(Keys[l]!, count, kept);
                Values[l] = Shifted(Values[l]!, count, kept);
            }
            Columns = kept;
        }

        private static Tensor Shifted(Tensor buffer, long count, long kept)
        {
            var result = empty(buffer.shape, dtype: buffer.dtype, device: buffer.device);
            if (kept > 0) result.narrow(2, 0, kept).copy_(buffer.narrow(2, count, kept));
            buffer.Dispose();
            return result.DetachFromDisposeScope();
        }

        public void DisposeLayer(int layer)
        {
            Keys[layer]?.Dispose(); Keys[layer] = null;
            Values[layer]?.Dispose(); Values[layer] = null;
        }

        public void Dispose()
        {
            for (var l = 0; l < Keys.Length; l++) DisposeLayer(l);
        }
    }
}

/// <summary>Rows [Start, Start + Count) of a batch, whose keys begin at column FirstColumn (see <see cref="KvCache.RowGroups"/>).</summary>
public readonly record struct RowGroup(int Start, int Count, long FirstColumn);
