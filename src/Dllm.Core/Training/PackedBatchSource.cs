using System.Text.Json.Nodes;
using Dllm.Data;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>
/// Batches of packed sequences from a tokenized corpus, in the sampler's seeded per-epoch order.
/// With the document mask off, document ids are dropped and attention spans the whole window
/// (the ablation METHOD.md §6 compares against).
/// </summary>
public sealed class PackedBatchSource(PackedSequences sequences, int batchSize, long seed, bool documentMask = true) : IBatchSource
{
    private BatchSampler _sampler = new(sequences, batchSize, seed);

    public TokenBatch Next(Device device)
    {
        var (tokens, docs, rows, columns) = _sampler.Next();
        long[] shape = [rows, columns];
        return new TokenBatch(tensor(tokens, shape, device: device), documentMask ? tensor(docs, shape, device: device) : null);
    }

    public JsonNode SavePosition() => new JsonObject { ["epoch"] = _sampler.Position.Epoch, ["offset"] = _sampler.Position.Offset };

    public void RestorePosition(JsonNode position) =>
        _sampler = new BatchSampler(sequences, batchSize, seed, new DataPosition(position["epoch"]!.GetValue<long>(), position["offset"]!.GetValue<long>()));

    /// <summary>The first <paramref name="count"/> windows of a split, as fixed validation rows.</summary>
    public static ValidationRows Rows(PackedSequences sequences, int count)
    {
        var n = (int)Math.Min(count, sequences.Count);
        var tokens = new long[n][];
        var docs = new int[n][];
        for (var i = 0; i < n; i++)
        {
            var (t, d) = sequences.Get(i);
            tokens[i] = t.Select(x => (long)x).ToArray();
            docs[i] = d;
        }
        return new ValidationRows(tokens, docs);
    }
}
