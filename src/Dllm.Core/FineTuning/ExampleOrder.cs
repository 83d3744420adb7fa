using System.Text.Json.Nodes;
using Dllm.Data;

namespace Dllm.FineTuning;

/// <summary>
/// Walks examples epoch after epoch in a seeded order, a batch at a time; the position (epoch, offset)
/// is all a checkpoint needs to continue exactly.
/// </summary>
internal sealed class ExampleOrder(int count, long seed)
{
    private long _epoch;
    private long _offset;
    private int[] _order = EpochOrder.Permutation(count, seed, 0);

    /// <summary>The position as a checkpoint stores it.</summary>
    public JsonNode Save() => new JsonObject { ["epoch"] = _epoch, ["offset"] = _offset };

    public void Restore(JsonNode position) => Restore(position["epoch"]!.GetValue<long>(), position["offset"]!.GetValue<long>());

    private void Restore(long epoch, long offset)
    {
        if (offset < 0 || offset > count) throw new DllmException($"saved data position {offset} is outside this dataset of {count} examples (did the data change?)");
        (_epoch, _offset) = (epoch, offset);
        _order = EpochOrder.Permutation(count, seed, epoch);
    }

    public int[] Next(int batchSize)
    {
        var picked = new int[batchSize];
        for (var i = 0; i < batchSize; i++)
        {
            if (_offset == count)
            {
                _epoch++;
                _offset = 0;
                _order = EpochOrder.Permutation(count, seed, _epoch);
            }
            picked[i] = _order[_offset++];
        }
        return picked;
    }
}
