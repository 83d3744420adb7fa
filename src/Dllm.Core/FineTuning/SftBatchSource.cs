using System.Text.Json.Nodes;
using Dllm.Data;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.FineTuning;

/// <summary>
/// SFT batches: each row is prompt + response, padded with EOS up to the batch's longest example
/// rounded up to a multiple of the block size (METHOD.md §4: the padding EOS is learned, so the model
/// can stop). Scored marks response and padding positions: only they are masked and carry loss.
/// Grouped by length, a batch holds examples of similar length (<see cref="ExampleOrder"/>), so it pads less.
/// </summary>
public sealed class SftBatchSource(IReadOnlyList<SftExample> examples, int batchSize, int blockSize, int padId, long seed, bool groupByLength = false) : IBatchSource
{
    private readonly ExampleOrder _order = new(examples.Count, seed, groupByLength ? examples.Select(e => e.Prompt.Length + e.Response.Length).ToList() : null);

    public TokenBatch Next(Device device)
    {
        var rows = _order.Next(batchSize).Select(i => examples[i]).ToList();
        return Pack(rows.Select(r => (r.Prompt, r.Response)).ToList(), blockSize, padId, device);
    }

    /// <summary>Rows of (prompt, response) into a padded [N, L] batch with the response mask.</summary>
    public static TokenBatch Pack(IReadOnlyList<(int[] Prompt, int[] Response)> rows, int blockSize, int padId, Device device)
    {
        var longest = rows.Max(r => r.Prompt.Length + r.Response.Length);
        var length = (longest + blockSize - 1) / blockSize * blockSize;
        var tokens = new long[rows.Count * length];
        var scored = new bool[rows.Count * length];
        var padding = new bool[rows.Count * length];
        for (var i = 0; i < rows.Count; i++)
        {
            var (prompt, response) = rows[i];
            for (var j = 0; j < length; j++)
            {
                var at = i * length + j;
                tokens[at] = j < prompt.Length ? prompt[j] : j < prompt.Length + response.Length ? response[j - prompt.Length] : padId;
                scored[at] = j >= prompt.Length;
                padding[at] = j >= prompt.Length + response.Length;
            }
        }
        long[] shape = [rows.Count, length];
        return new TokenBatch(tensor(tokens, shape, device: device), null, tensor(scored, shape, device: device), tensor(padding, shape, device: device));
    }

    public JsonNode SavePosition() => _order.Save();

    public void RestorePosition(JsonNode position) => _order.Restore(position);
}
