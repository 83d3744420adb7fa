namespace Dllm;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014), written out because everything that must give the same numbers
/// forever draws from it: the demo corpus (byte-identical on every machine), the validation split and epoch
/// order (a change would silently move resumed runs), and the seeds of each training step's torch generator.
/// System.Random's algorithm is not a documented contract. Not thread-safe; one instance per stream.
/// </summary>
public sealed class SeededRandom(ulong seed)
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;
    private ulong _state = seed;

    public SeededRandom(long seed) : this(unchecked((ulong)seed)) { }

    public ulong NextUInt64()
    {
        _state = unchecked(_state + Golden);
        return Mix(_state);
    }

    /// <summary>Uniform in [0, <paramref name="bound"/>), without modulo bias (Lemire 2019, "Fast random integer generation in an interval").</summary>
    public int NextBelow(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        uint range = (uint)bound;
        ulong product = (ulong)NextUInt32() * range;
        if ((uint)product < range)
        {
            uint threshold = (0u - range) % range;
            while ((uint)product < threshold) product = (ulong)NextUInt32() * range;
        }
        return (int)(product >> 32);
    }

    /// <summary>Uniform in [<paramref name="min"/>, <paramref name="maxInclusive"/>].</summary>
    public int Between(int min, int maxInclusive) => min + NextBelow(maxInclusive - min + 1);

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Chance(double p) => UnitInterval(NextUInt64()) < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[NextBelow(items.Count)];

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextBelow(i + 1);
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
            int j = i + NextBelow(pool.Count - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        pool.RemoveRange(count, pool.Count - count);
        return pool;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public static double UnitInterval(ulong bits) => (bits >> 11) * (1.0 / (1UL << 53));

    /// <summary>
    /// A seed for the named sub-stream of <paramref name="seed"/>, so that streams (stories, test tasks, ...)
    /// do not overlap and adding draws to one leaves the others unchanged. FNV-1a, because string.GetHashCode
    /// is randomised per process.
    /// </summary>
    public static ulong Derive(long seed, string stream)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in stream) hash = unchecked((hash ^ c) * 1099511628211UL);
        return Mix(unchecked((ulong)seed) ^ Mix(hash));
    }

    /// <summary>
    /// A well-mixed 64-bit value of (<paramref name="stream"/>, <paramref name="seed"/>, <paramref name="index"/>),
    /// for per-item decisions that must not depend on visiting order. Distinct streams keep, e.g., the
    /// validation choice and the epoch shuffle of the same seed independent.
    /// </summary>
    public static ulong Hash(ulong stream, ulong seed, ulong index) => unchecked(Mix((Mix(Mix(stream + Golden) ^ seed) + Golden) ^ index));

    /// <summary>
    /// The torch generator seed of one (seed, step, micro-batch): independent, reproducible streams, so a
    /// resumed run draws exactly what the uninterrupted one drew.
    /// </summary>
    public static ulong StepSeed(long seed, long step, int micro) =>
        Mix(unchecked((ulong)seed * Golden ^ (ulong)step * 0xBF58476D1CE4E5B9UL ^ (ulong)micro * 0x94D049BB133111EBUL));

    private uint NextUInt32() => (uint)(NextUInt64() >> 32);

    /// <summary>SeededRandom's finaliser: a bijection on 64-bit values with good avalanche.</summary>
    private static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
