namespace Dllm.Data;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014), written out here because anything that decides which documents are
/// held out or in which order windows are visited must give the same numbers forever: System.Random's
/// algorithm is not a documented contract, and a change would silently move resumed runs and the validation split.
/// </summary>
internal sealed class SeededRandom
{
    private const ulong Golden = 0x9E3779B97F4A7C15;
    private ulong _state;

    public SeededRandom(ulong seed) => _state = seed;

    public ulong NextUInt64() => Mix(_state += Golden);

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

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public static double UnitInterval(ulong bits) => (bits >> 11) * (1.0 / (1UL << 53));

    /// <summary>
    /// A well-mixed 64-bit value of (<paramref name="stream"/>, <paramref name="seed"/>, <paramref name="index"/>),
    /// for per-item decisions that must not depend on visiting order. Distinct streams keep, e.g., the
    /// validation choice and the epoch shuffle of the same seed independent.
    /// </summary>
    public static ulong Hash(ulong stream, ulong seed, ulong index) => Mix((Mix(Mix(stream + Golden) ^ seed) + Golden) ^ index);

    private uint NextUInt32() => (uint)(NextUInt64() >> 32);

    /// <summary>SplitMix64's finaliser: a bijection on 64-bit values with good avalanche.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
