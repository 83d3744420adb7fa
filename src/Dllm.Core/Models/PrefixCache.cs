using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Keys and values of token prefixes, kept across requests so that a prompt starting like an earlier one (a system
/// prompt, a chat history) prefills only what is new. Decoders leave a prompt's chunks once it is prefilled and, when a
/// sequence finishes, the chunks its answer completed, so a chat's next turn (history, answer, new message) finds both. Stored in chunks of whole blocks: under block-causal attention
/// with block B (AR is B = 1) the keys and values of positions [0, kC) depend only on tokens [0, kC) when the chunk C
/// is a multiple of B, so a stored chunk is exact for every prompt that shares the tokens up to its end. An entry is
/// found by the whole prefix it ends (compared token by token, never by hash alone) and the block size it was
/// computed under. Least recently used chunks go first once <see cref="CapacityTokens"/> is reached; a chain's later
/// chunks go before its earlier ones. One per model; callers on one thread at a time (it locks anyway).
/// </summary>
public sealed class PrefixCache(long capacityTokens) : IDisposable
{
    /// <summary>The smallest chunk: a multiple of the block size at least this long (fewer lookups and copies for AR).</summary>
    public const int MinimumChunk = 16;

    private readonly Dictionary<PrefixKey, Entry> _entries = new(PrefixKey.Comparer);
    private readonly object _gate = new();
    private long _clock;

    public long CapacityTokens { get; } = capacityTokens >= 0 ? capacityTokens
        : throw new DllmException($"the prefix cache's capacity must be 0 (off) or more tokens, got {capacityTokens}");

    /// <summary>Tokens whose keys and values are stored now.</summary>
    public long StoredTokens { get; private set; }

    /// <summary>Prompt tokens taken from the store instead of prefilled, since creation.</summary>
    public long ReusedTokens { get; private set; }

    /// <summary>Prompt tokens looked up (the most a lookup could have reused), since creation.</summary>
    public long LookedUpTokens { get; private set; }

    public static int ChunkFor(int blockSize) => (MinimumChunk + blockSize - 1) / blockSize * blockSize;

    /// <summary>
    /// Fills the empty single-row <paramref name="cache"/> with the longest stored prefix of <paramref name="prompt"/>
    /// of at most <paramref name="limit"/> tokens computed under block size <paramref name="blockSize"/>; returns its
    /// length (a multiple of the chunk; 0 when nothing matches).
    /// </summary>
    public int Load(IReadOnlyList<int> prompt, int limit, int blockSize, KvCache cache)
    {
        if (cache.Length != 0) throw new ArgumentException("a prefix is loaded into an empty cache");
        var chunk = ChunkFor(blockSize);
        var tokens = prompt as int[] ?? prompt.ToArray();
        lock (_gate)
        {
            LookedUpTokens += limit / chunk * chunk;
            var found = new List<Entry>();
            for (var end = chunk; end <= limit && _entries.TryGetValue(new PrefixKey(tokens, end, blockSize), out var entry); end += chunk)
                found.Add(entry);
            if (found.Count == 0) return 0;
            var now = ++_clock;
            foreach (var e in found) e.LastUse = now;
            cache.Load(found.Select(e => (e.Keys, e.Values)).ToList());
            ReusedTokens += found.Count * chunk;
            return found.Count * chunk;
        }
    }

    /// <summary>
    /// Stores the whole chunks of <paramref name="prompt"/>[..<paramref name="length"/>] that <paramref name="cache"/>
    /// (computed under block size <paramref name="blockSize"/>) has and the store lacks. The sequence is row
    /// <paramref name="row"/> of the cache, its position 0 at column <paramref name="offset"/> (a batch's rows are
    /// aligned to the right); the tokens may go past the prompt into what was generated, which a chat's next turn repeats.
    /// </summary>
    public void Store(IReadOnlyList<int> prompt, int length, int blockSize, KvCache cache, int row = 0, long offset = 0)
    {
        if (CapacityTokens == 0) return;
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset));
        var chunk = ChunkFor(blockSize);
        length = (int)Math.Min(length, cache.Length - offset) / chunk * chunk;
        var tokens = prompt as int[] ?? prompt.ToArray();
        lock (_gate)
        {
            var now = ++_clock;
            for (var end = chunk; end <= length; end += chunk)
            {
                var key = new PrefixKey(tokens, end, blockSize);
                if (_entries.TryGetValue(key, out var known))
                {
                    known.LastUse = now;
                    continue;
                }
                if (chunk > CapacityTokens) return;
                while (StoredTokens + chunk > CapacityTokens) Evict();
                var (keys, values) = cache.Slice(offset + end - chunk, chunk, row);
                _entries[key.Owned()] = new Entry(keys, values, end) { LastUse = now };
                StoredTokens += chunk;
            }
        }
    }

    /// <summary>Drops the least recently used chunk; among equals, the one ending latest (a chain's tail).</summary>
    private void Evict()
    {
        var (key, entry) = _entries.MinBy(kv => (kv.Value.LastUse, -kv.Value.End));
        _entries.Remove(key);
        StoredTokens -= entry.Keys[0].shape[1];
        entry.Dispose();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var e in _entries.Values) e.Dispose();
            _entries.Clear();
            StoredTokens = 0;
        }
    }

    /// <summary>One chunk: per layer keys and values [H_kv, C, D].</summary>
    private sealed class Entry(Tensor[] keys, Tensor[] values, int end) : IDisposable
    {
        public Tensor[] Keys { get; } = keys;
        public Tensor[] Values { get; } = values;
        public int End { get; } = end;
        public long LastUse { get; set; }

        public void Dispose()
        {
            foreach (var t in Keys) t.Dispose();
            foreach (var t in Values) t.Dispose();
        }
    }

    /// <summary>The first <see cref="Length"/> tokens of an array and a block size; lookups wrap the prompt without copying it.</summary>
    private readonly struct PrefixKey(int[] tokens, int length, int blockSize)
    {
        public int Length { get; } = length;

        public PrefixKey Owned() => new(_tokens[..Length], Length, _block);

        public static readonly IEqualityComparer<PrefixKey> Comparer = new KeyComparer();

        private sealed class KeyComparer : IEqualityComparer<PrefixKey>
        {
            public bool Equals(PrefixKey a, PrefixKey b) =>
                a.Length == b.Length && a._block == b._block && a._tokens.AsSpan(0, a.Length).SequenceEqual(b._tokens.AsSpan(0, b.Length));

            public int GetHashCode(PrefixKey k)
            {
                var hash = new HashCode();
                hash.Add(k._block);
                hash.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(k._tokens.AsSpan(0, k.Length)));
                return hash.ToHashCode();
            }
        }

        private readonly int[] _tokens = tokens;
        private readonly int _block = blockSize;
    }
}
