using Dllm.Data;

namespace Dllm.Tests.Data;

public sealed class BatchSamplerTests : IDisposable
{
    private const int Length = 8;
    private readonly TempDirectory _dir = new();
    private readonly TokenCorpus _corpus;
    private readonly PackedSequences _windows;
    private readonly Dictionary<string, long> _windowIndex = [];

    public BatchSamplerTests()
    {
        // Every 8-token window holds a whole 4-digit number and each number occurs once, so windows are told apart by content.
        var documents = Enumerable.Range(0, 5).Select(d => string.Join(" ", Enumerable.Range(d * 10, 10).Select(n => n.ToString("D4"))));
        string path = CorpusFiles.WriteText(_dir.File("c.txt"), documents);
        _corpus = TokenCorpus.Build([path], TinyCheckpoints.Tokenizer(), _dir.File("cache"), new CorpusOptions(ValidationFraction: 0));
        _windows = _corpus.Train(Length);
        for (long i = 0; i < _windows.Count; i++) _windowIndex.Add(Key(_windows.Get(i).Tokens.Select(t => (long)t)), i);
        Assert.InRange(_windows.Count, 10, 40); // enough windows for orders to differ; 3 does not divide it below
        Assert.NotEqual(0, _windows.Count % 3);
    }

    public void Dispose()
    {
        _corpus.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void Same_seed_gives_identical_batches()
    {
        var a = new BatchSampler(_windows, 3, seed: 11);
        var b = new BatchSampler(_windows, 3, seed: 11);

        for (int i = 0; i < 30; i++) AssertSameBatch(a.Next(), b.Next());
    }

    [Fact]
    public void Each_epoch_visits_every_window_exactly_once_and_batches_run_on_into_the_next_epoch()
    {
        int count = (int)_windows.Count;
        var sampler = new BatchSampler(_windows, 3, seed: 3);
        var visited = new List<long>();
        int batches = 3 * count; // 3 rows each: 9 epochs
        for (int b = 0; b < batches; b++) visited.AddRange(Rows(sampler.Next()));

        Assert.Equal(9 * count, visited.Count);
        for (int epoch = 0; epoch < 9; epoch++)
            Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), visited.Skip(epoch * count).Take(count).Order());
        Assert.Equal(new DataPosition(9, 0), sampler.Position);
        Assert.NotEqual(visited.Take(count), visited.Skip(count).Take(count)); // each epoch reshuffles
    }

    [Fact]
    public void Position_counts_consumed_windows_of_the_current_epoch()
    {
        int count = (int)_windows.Count;
        var sampler = new BatchSampler(_windows, 3, seed: 0);
        Assert.Equal(new DataPosition(0, 0), sampler.Position);

        int full = count / 3;
        for (int i = 0; i < full; i++) sampler.Next();
        Assert.Equal(new DataPosition(0, 3 * full), sampler.Position);
        sampler.Next(); // straddles the epoch boundary
        Assert.Equal(new DataPosition(1, 3 - count % 3), sampler.Position);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(9)]
    [InlineData(11)]
    [InlineData(23)]
    public void Resuming_from_a_saved_position_continues_with_the_uninterrupted_batches(int k)
    {
        var uninterrupted = new BatchSampler(_windows, 3, seed: 5);
        var reference = Enumerable.Range(0, k + 12).Select(_ => uninterrupted.Next()).ToList();

        var first = new BatchSampler(_windows, 3, seed: 5);
        for (int i = 0; i < k; i++) first.Next();
        DataPosition saved = first.Position with { }; // as if written to and read from a checkpoint
        var resumed = new BatchSampler(_windows, 3, seed: 5, saved);

        Assert.Equal(saved, resumed.Position);
        for (int i = k; i < k + 12; i++) AssertSameBatch(reference[i], resumed.Next());
        Assert.True((k + 12) * 3 > _windows.Count, "the resumed run must cross an epoch boundary");
    }

    [Fact]
    public void Different_seeds_give_different_orders()
    {
        var a = new BatchSampler(_windows, 1, seed: 1);
        var b = new BatchSampler(_windows, 1, seed: 2);

        long[] orderA = [.. Enumerable.Range(0, (int)_windows.Count).SelectMany(_ => Rows(a.Next()))];
        long[] orderB = [.. Enumerable.Range(0, (int)_windows.Count).SelectMany(_ => Rows(b.Next()))];

        Assert.NotEqual(orderA, orderB);
        Assert.Equal(orderA.Order(), orderB.Order());
    }

    [Fact]
    public void Batch_is_row_major_with_each_rows_window_and_document_ids()
    {
        var sampler = new BatchSampler(_windows, 4, seed: 8);

        var batch = sampler.Next();

        Assert.Equal((4, Length), (batch.Rows, batch.Columns));
        Assert.Equal(4 * Length, batch.Tokens.Length);
        Assert.Equal(4 * Length, batch.DocumentIds.Length);
        long[] rows = Rows(batch);
        for (int r = 0; r < 4; r++)
        {
            var (tokens, ids) = _windows.Get(rows[r]);
            Assert.Equal(tokens.Select(t => (long)t), batch.Tokens.Skip(r * Length).Take(Length));
            Assert.Equal(ids.Select(t => (long)t), batch.DocumentIds.Skip(r * Length).Take(Length));
        }
    }

    [Theory]
    [InlineData(0, -1)]
    [InlineData(-1, 0)]
    [InlineData(0, 1000)]
    public void Position_outside_the_epoch_is_an_error(long epoch, long offset)
    {
        var error = Assert.Throws<DllmException>(() => new BatchSampler(_windows, 2, 0, new DataPosition(epoch, offset)));

        Assert.Contains($"an epoch has {_windows.Count} sequences", error.Message);
    }

    private long[] Rows((long[] Tokens, long[] DocumentIds, int Rows, int Columns) batch) =>
        [.. batch.Tokens.Chunk(batch.Columns).Select(row => _windowIndex[Key(row)])];

    private static string Key(IEnumerable<long> tokens) => string.Join(",", tokens);

    private static void AssertSameBatch(
        (long[] Tokens, long[] DocumentIds, int Rows, int Columns) expected, (long[] Tokens, long[] DocumentIds, int Rows, int Columns) actual)
    {
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.Equal(expected.DocumentIds, actual.DocumentIds);
        Assert.Equal((expected.Rows, expected.Columns), (actual.Rows, actual.Columns));
    }
}
