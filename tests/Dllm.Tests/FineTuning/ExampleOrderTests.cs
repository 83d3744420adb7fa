using System.Text.Json.Nodes;
using Dllm.FineTuning;

namespace Dllm.Tests.FineTuning;

public class ExampleOrderTests
{
    private const int Batch = 8;

    /// <summary>Lengths spread like chat data: most short, a tail of long ones.</summary>
    private static int[] Lengths(int count, int seed = 3)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.NextDouble() < 0.8 ? random.Next(5, 40) : random.Next(40, 400)).ToArray();
    }

    private static List<int[]> Take(ExampleOrder order, int batches) => Enumerable.Range(0, batches).Select(_ => order.Next(Batch)).ToList();

    /// <summary>Padded positions of a batch: every row is as long as the longest.</summary>
    private static long Padded(int[] batch, int[] lengths) => (long)batch.Length * batch.Max(i => lengths[i]);

    [Fact]
    public void AGroupedEpochServesEveryExampleOnceAndPadsFarLessThanRandomBatches()
    {
        var lengths = Lengths(1000);   // 125 batches of 8: two windows, the second partial
        var grouped = Take(new ExampleOrder(lengths.Length, seed: 7, lengths), 125);
        Assert.Equal(Enumerable.Range(0, 1000), grouped.SelectMany(b => b).Order());
        Assert.All(grouped, b => Assert.Equal(Batch, b.Length));

        var random = Take(new ExampleOrder(lengths.Length, seed: 7), 125);
        var (groupedCost, randomCost) = (grouped.Sum(b => Padded(b, lengths)), random.Sum(b => Padded(b, lengths)));
        Assert.True(groupedCost < 0.5 * randomCost, $"grouped batches pad to {groupedCost} positions, random ones to {randomCost}");
        // Neighbours in length share a batch: the spread inside a batch is small next to the data's.
        Assert.True(grouped.Average(b => b.Max(i => lengths[i]) - b.Min(i => lengths[i])) < 40);
    }

    [Fact]
    public void BatchesStayWithinAnEpochAndTheLastOneMayBeShort()
    {
        var lengths = Lengths(100);
        var order = new ExampleOrder(lengths.Length, seed: 1, lengths);
        var epoch = Take(order, 13);   // 12 full batches and one of 4
        Assert.Equal(Enumerable.Range(0, 100), epoch.SelectMany(b => b).Order());
        Assert.Equal(12, epoch.Count(b => b.Length == Batch));
        Assert.Single(epoch, b => b.Length == 4);
        var next = Take(order, 13);
        Assert.Equal(Enumerable.Range(0, 100), next.SelectMany(b => b).Order());
        Assert.NotEqual(epoch.Select(b => string.Join(',', b)), next.Select(b => string.Join(',', b)));   // a new shuffle each epoch
        Assert.Equal(1, order.Save()["epoch"]!.GetValue<long>());
    }

    [Fact]
    public void ASavedPositionContinuesExactlyMidEpochAndAcrossEpochs()
    {
        var lengths = Lengths(100);
        foreach (var stop in new[] { 0, 5, 13, 20 })
        {
            var straight = new ExampleOrder(lengths.Length, seed: 4, lengths);
            var first = Take(straight, stop);
            var saved = JsonNode.Parse(straight.Save().ToJsonString())!;
            var rest = Take(straight, 15);

            var resumed = new ExampleOrder(lengths.Length, seed: 4, lengths);
            resumed.Restore(saved);
            Assert.Equal(rest, Take(resumed, 15));
        }
    }

    [Fact]
    public void APositionOffABatchBoundaryIsRefusedWithAReason()
    {
        var lengths = Lengths(100);
        var order = new ExampleOrder(lengths.Length, seed: 4, lengths);
        order.Restore(new JsonObject { ["epoch"] = 0L, ["offset"] = 3L });   // e.g. saved by a run with random batches of 3
        var e = Assert.Throws<DllmException>(() => order.Next(Batch));
        Assert.Contains("batch boundary", e.Message);
    }

    [Fact]
    public void SftBatchesGroupedByLengthPadToTheirOwnLongestRow()
    {
        // Two populations far apart: grouped batches never mix them except where a window's sorted run crosses over.
        var examples = Enumerable.Range(0, 64).Select(i => new SftExample([1, 2], Enumerable.Repeat(5, i % 2 == 0 ? 3 : 60).ToArray())).ToList();
        var grouped = new SftBatchSource(examples, batchSize: 8, blockSize: 4, padId: 0, seed: 2, groupByLength: true);
        var random = new SftBatchSource(examples, batchSize: 8, blockSize: 4, padId: 0, seed: 2);
        long Width(SftBatchSource s) { using var b = s.Next(TorchSharp.torch.CPU); return b.Tokens.shape[1]; }
        var groupedWidths = Enumerable.Range(0, 8).Select(_ => Width(grouped)).ToList();
        Assert.Equal(4, groupedWidths.Count(w => w == 8));     // 2 + 3 tokens, padded to a block multiple
        Assert.Equal(4, groupedWidths.Count(w => w == 64));
        Assert.All(Enumerable.Range(0, 8), _ => Assert.Equal(64, Width(random)));
    }
}
