using System.Text.Json.Nodes;
using Dllm.Data;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Tests.Training;

/// <summary>Cycles through fixed sequences in order; its position is the index of the next one.</summary>
public sealed class InMemoryBatchSource(long[][] sequences, int batchSize) : IBatchSource
{
    private long _next;

    public TokenBatch Next(Device device)
    {
        var rows = Enumerable.Range(0, batchSize).Select(i => sequences[(_next + i) % sequences.Length]).ToArray();
        _next += batchSize;
        var l = rows[0].Length;
        return new TokenBatch(tensor(rows.SelectMany(r => r).ToArray(), new long[] { batchSize, l }, device: device));
    }

    public JsonNode SavePosition() => new JsonObject { ["next"] = _next };

    public void RestorePosition(JsonNode position) => _next = position["next"]!.GetValue<long>();

    /// <summary>Sequences with learnable structure: counting patterns with a per-sequence stride.</summary>
    public static long[][] Patterns(int count, int length, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var start = rng.Next(vocab);
            var stride = 1 + rng.Next(3);
            return Enumerable.Range(0, length).Select(i => (long)((start + i * stride) % vocab)).ToArray();
        }).ToArray();
    }
}
