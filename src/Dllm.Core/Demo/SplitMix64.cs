namespace Dllm.Demo;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded generator whose output is fixed by its
/// definition, unlike System.Random, whose algorithm may change between .NET versions. The demo corpus
/// must be byte-identical for a seed on every machine and runtime, so it draws only from this.
/// Not thread-safe; one instance per stream.
/// </summary>
internal sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public SplitMix64(long seed) : this(unchecked((ulong)seed)) { }

    /// <summary>
    /// A seed for the named sub-stream of <paramref name="seed"/>, so that streams (stories, test tasks, ...)
    /// do not overlap and adding draws to one leaves the others unchanged. FNV-1a, because string.GetHashCode
    /// is randomised per process.
    /// </summary>
    public static ulong Derive(long seed, string stream)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in stream) hash = (hash ^ c) * 1099511628211UL;
        return Mix(unchecked((ulong)seed) ^ Mix(hash));
    }

    public ulong NextUInt64()
    {
        _state = unchecked(_state + 0x9E3779B97F4A7C15UL);
        return Mix(_state);
    }

    /// <summary>Uniform in [0, <paramref name="maxExclusive"/>): Lemire's multiply-shift, bias below 2^-32 for our small ranges.</summary>
    public int Next(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        return (int)(((NextUInt64() >> 32) * (ulong)maxExclusive) >> 32);
    }

    /// <summary>Uniform in [<paramref name="min"/>, <paramref name="maxInclusive"/>].</summary>
    public int Between(int min, int maxInclusive) => min + Next(maxInclusive - min + 1);

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Chance(double p) => (NextUInt64() >> 11) * (1.0 / (1UL << 53)) < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary><paramref name="count"/> distinct items in random order.</summary>
    public List<T> Sample<T>(IReadOnlyList<T> items, int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, items.Count);
        var pool = items.ToList();
        for (int i = 0; i < count; i++)
        {
            int j = i + Next(pool.Count - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        pool.RemoveRange(count, pool.Count - count);
        return pool;
    }

    private static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
