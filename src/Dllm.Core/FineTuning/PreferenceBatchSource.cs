using System.Text.Json.Nodes;
using Dllm.Data;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.FineTuning;

/// <summary>DPO batches: rows alternate chosen, rejected for each pair, padded together like SFT rows (grouped by a pair's longer row).</summary>
public sealed class PreferenceBatchSource(IReadOnlyList<PreferenceExample> pairs, int pairsPerBatch, int blockSize, int padId, long seed, bool groupByLength = false) : IBatchSource
{
    private readonly ExampleOrder _order = new(pairs.Count, seed,
        groupByLength ? pairs.Select(p => p.Prompt.Length + Math.Max(p.Chosen.Length, p.Rejected.Length)).ToList() : null);

    public TokenBatch Next(Device device)
    {
        var rows = _order.Next(pairsPerBatch).Select(i => pairs[i])
            .SelectMany(p => new[] { (p.Prompt, p.Chosen), (p.Prompt, p.Rejected) }).ToList();
        return SftBatchSource.Pack(rows, blockSize, padId, device);
    }

    public JsonNode SavePosition() => _order.Save();

    public void RestorePosition(JsonNode position) => _order.Restore(position);
}
