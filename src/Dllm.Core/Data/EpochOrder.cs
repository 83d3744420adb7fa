namespace Dllm.Data;

/// <summary>The order in which one epoch visits the windows: a Fisher-Yates shuffle driven by (seed, epoch).</summary>
internal static class EpochOrder
{
    public static int[] Permutation(int count, long seed, long epoch, ulong stream = RandomStreams.EpochOrder)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        var random = new SeededRandom(SeededRandom.Hash(stream, (ulong)seed, (ulong)epoch));
        for (int i = count - 1; i > 0; i--)
        {
            int j = random.NextBelow(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
