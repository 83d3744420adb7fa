namespace Dllm.IO;

/// <summary>
/// Splits tensors, in order, into shards of at most maxShardBytes of tensor data, the way
/// huggingface_hub's split_torch_state_dict_into_shards does: a new shard starts when the next
/// tensor would tip the current one over the limit, and a tensor larger than the limit gets a
/// shard of its own (tensors are never split).
/// </summary>
internal static class ShardPlan
{
    public static List<(int Start, int Count)> Split(IReadOnlyList<long> sizes, long maxShardBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        var shards = new List<(int Start, int Count)>();
        var start = 0;
        long current = 0;
        for (var i = 0; i < sizes.Count; i++)
        {
            if (i > start && current + sizes[i] > maxShardBytes)
            {
                shards.Add((start, i - start));
                start = i;
                current = 0;
            }
            current += sizes[i];
        }
        if (sizes.Count > start) shards.Add((start, sizes.Count - start));
        return shards;
    }
}
