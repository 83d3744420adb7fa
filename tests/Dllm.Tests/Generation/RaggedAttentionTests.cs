using Dllm.Generation;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// Ragged attention: rows of a right-aligned batch cache attend in groups of similar length, each over its own
/// columns. The result must be the one call over every column, and a batch of very different lengths must decode
/// what each prompt decodes alone.
/// </summary>
public class RaggedAttentionTests
{
    public RaggedAttentionTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void GroupsSplitWhereARowIsMoreThanTheSlackShorterThanItsGroupsFirst()
    {
        Assert.Equal([new RowGroup(0, 2, 2), new RowGroup(2, 2, 64)], KvCache.GroupsByLength([70, 40, 8, 5], 72, 32)!);
        Assert.Equal([new RowGroup(0, 1, 0), new RowGroup(1, 3, 40)], KvCache.GroupsByLength([80, 40, 39, 8], 80, 32)!);
        Assert.Null(KvCache.GroupsByLength([40, 20, 8], 40, 32));   // one group: the plain call
        Assert.Null(KvCache.GroupsByLength([8, 70], 72, 32));         // not longest first: no groups
    }

    [Fact]
    public void GroupedAttentionEqualsOneCallOverEveryColumn()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(5);
        long rows = 4, heads = 4, kvHeads = 2, d = 8, committed = 10, t = 2;
        using var cache = new KvCache(layers: 1, initialCapacity: 16);
        cache.Extend(0, randn([rows, kvHeads, committed, d], generator: generator), randn([rows, kvHeads, committed, d], generator: generator));
        cache.Commit(committed);
        // Right-aligned rows with 12, 10, 5 and 4 keys of the 12 columns (this forward's 2 new ones included).
        long[] keys = [12, 10, 5, 4];
        var valid = stack(keys.Select(k => arange(committed + t).ge(committed + t - k)).ToArray());                 // [R, S]
        var mask = valid.unsqueeze(1).unsqueeze(1).expand(rows, 1, t, committed + t);                                // [R, 1, T, S]
        var folded = AttentionKernel.FoldMask(mask, heads / kvHeads);
        var q = randn([rows, heads, t, d], generator: generator);
        var k = randn([rows, kvHeads, t, d], generator: generator);
        var v = randn([rows, kvHeads, t, d], generator: generator);
        var context = new LayerContext(empty(0), empty(0), folded, cache);

        var whole = AttentionKernel.Attend(q, k, v, context, 0);
        cache.RowGroups = KvCache.GroupsByLength(keys, committed + t, slack: 1);   // [12], [10], [5, 4]
        Assert.Equal(3, cache.RowGroups!.Count);
        var ragged = AttentionKernel.Attend(q, k, v, context, 0);
        cache.RowGroups = null;

        Assert.True(ragged.allclose(whole, rtol: 1e-5, atol: 1e-6), $"max difference {(ragged - whole).abs().max().item<float>()}");
    }

    [Fact]
    public void ASegmentedCacheAttendsAsTheRectangularOneThroughJoinsReordersAndLeaves()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(9);
        long heads = 4, kvHeads = 2, d = 8, t = 2;
        // Each row's keys and values so far, [H_kv, L, D]: the reference the cache must reproduce.
        var keys = new List<Tensor>();
        var values = new List<Tensor>();
        using var cache = new KvCache(layers: 1, initialCapacity: 4);

        void Join(long length)
        {
            using var side = new KvCache(layers: 1, initialCapacity: 4);
            var (k, v) = (randn([1, kvHeads, length, d], generator: generator), randn([1, kvHeads, length, d], generator: generator));
            AttentionKernel.Attend(randn([1, heads, length, d], generator: generator), k, v,
                new LayerContext(empty(0), empty(0), ones(1, 1, heads / kvHeads * length, length, dtype: ScalarType.Bool), side), 0);
            side.Commit(length);
            cache.AppendRows(keys.Count, side, 1);
            Assert.Equal(0, side.AllocatedBytes);   // the batch took the side's buffers
            keys.Add(k[0]);
            values.Add(v[0]);
        }

        void Keep(long[] rows)
        {
            cache.KeepRows(rows);
            var (k, v) = (rows.Select(r => keys[(int)r]).ToList(), rows.Select(r => values[(int)r]).ToList());
            (keys, values) = (k, v);
            cache.TrimUnusedFront(Valid(0));
        }

        // [R, Length + extra]: true where a row has a key, right-aligned.
        Tensor Valid(long extra) => stack(keys.Select(k => arange(cache.Length + extra).ge(cache.Length + extra - k.shape[1] - extra)).ToArray());

        // One forward of t new keys per row, ragged by length when asked, then committed; checked against one call
        // over the right-aligned rectangular keys.
        void Step(bool ragged)
        {
            long rows = keys.Count, s = cache.Length + t;
            var (q, k, v) = (randn([rows, heads, t, d], generator: generator), randn([rows, kvHeads, t, d], generator: generator), randn([rows, kvHeads, t, d], generator: generator));
            var lengths = keys.Select(x => x.shape[1] + t).ToArray();
            var valid = Valid(t);
            var mask = AttentionKernel.FoldMask(valid.unsqueeze(1).unsqueeze(1).expand(rows, 1, t, s), heads / kvHeads);
            var full = zeros(rows, kvHeads, s, d);
            var fullV = zeros(rows, kvHeads, s, d);
            for (var r = 0; r < rows; r++)
            {
                full[r].narrow(1, s - lengths[r], lengths[r]).copy_(cat([keys[r], k[r]], 1));
                fullV[r].narrow(1, s - lengths[r], lengths[r]).copy_(cat([values[r], v[r]], 1));
            }
            var expected = nn.functional.scaled_dot_product_attention(q.reshape(rows, kvHeads, heads / kvHeads * t, d), full, fullV, mask, 0.0, false)
                .reshape(rows, heads, t, d).transpose(1, 2).reshape(rows, t, heads * d);

            cache.RowGroups = ragged ? KvCache.GroupsByLength(lengths, s, slack: 4) : null;
            var actual = AttentionKernel.Attend(q, k, v, new LayerContext(empty(0), empty(0), mask, cache), 0);
            cache.RowGroups = null;
            cache.Commit(t);
            for (var r = 0; r < rows; r++)
            {
                keys[r] = cat([keys[r], k[r]], 1);
                values[r] = cat([values[r], v[r]], 1);
            }
            Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-6), $"max difference {(actual - expected).abs().max().item<float>()}");
        }

        foreach (var length in new long[] { 3, 40, 7, 38, 1 }) Join(length);
        Step(ragged: false);                       // one rectangular segment: every row stores the longest's width
        Assert.Equal(5 * 42, cache.StoredColumns);
        Keep([1, 3, 2, 0, 4]);                     // longest first: 42, 40, 9, 5, 3
        Step(ragged: true);                        // groups [44, 42], [11, 7], [5]: each stores its own columns
        Assert.Equal(2 * 44 + 2 * 11 + 5, cache.StoredColumns);
        Step(ragged: true);                        // same groups: no rearrangement, the segments grow
        Assert.Equal(2 * 46 + 2 * 13 + 7, cache.StoredColumns);
        Keep([1, 2, 3, 4]);                        // the longest leaves: its leading columns are freed
        Assert.Equal(44, cache.Length);
        Assert.Equal(44 + 2 * 13 + 7, cache.StoredColumns);
        Join(60);                                  // longer than the batch: everyone else now starts later
        Assert.Equal(60, cache.Length);
        Keep([4, 0, 1, 2, 3]);
        Step(ragged: true);
        Assert.Equal(62 + 46 + 2 * 15 + 9, cache.StoredColumns);
        Step(ragged: false);                       // back to one segment
        Assert.Equal(5 * 64, cache.StoredColumns);

        // A row's committed columns read back as they were written.
        var (sliced, _) = cache.Slice(cache.Length - keys[2].shape[1], keys[2].shape[1], row: 2);
        Assert.True(sliced[0].equal(keys[2]).all().item<bool>());
    }

    [Theory]
    [InlineData("ar")]
    [InlineData("diffusion")]
    public void AShortRowBesideALongOneStoresOnlyItsOwnColumns(string kind)
    {
        using var model = DecodeSessionTests.Model(kind);
        // One 90-token prompt and seven of 5 tokens: a rectangular cache holds 8 rows of the long one's width.
        int[][] prompts = [[.. Enumerable.Range(0, 90).Select(i => 20 + i * 3 % 150)], .. Enumerable.Range(0, 7).Select(r => Enumerable.Range(0, 5).Select(i => 30 + r + i).ToArray())];
        long BytesAfterThreeSteps(bool ragged)
        {
            using var session = Open(kind, model, ragged: ragged);
            foreach (var p in prompts) session.Add(p, new DecodeOptions { MaxNewTokens = 16 });
            for (var i = 0; i < 3; i++) Assert.NotNull(session.Step());
            return session.KvCacheBytes;
        }
        var rectangular = BytesAfterThreeSteps(ragged: false);
        var segmented = BytesAfterThreeSteps(ragged: true);
        Assert.True(segmented * 3 < rectangular, $"segmented {segmented} bytes against rectangular {rectangular}");
    }

    private static DecodeSession Open(string kind, CausalLM model, DecodeProfile? profile = null, bool ragged = true) => kind switch
    {
        "ar" => new ArDecodeSession(model, [], profile: profile) { RaggedAttention = ragged },
        "editing" => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4, Editing: new EditingOptions(0.5, 2)), DecodeSessionTests.Mask, [], profile: profile) { RaggedAttention = ragged },
        _ => new BlockDecodeSession(model, new BlockDecodeOptions(4, 0.6, 4), DecodeSessionTests.Mask, [], profile: profile) { RaggedAttention = ragged },
    };

    [Theory]
    [InlineData("ar")]
    [InlineData("diffusion")]
    [InlineData("shifted")]
    [InlineData("editing")]
    public void RowsOfVeryDifferentLengthsDecodeAsAloneWithRaggedAttention(string kind)
    {
        using var model = DecodeSessionTests.Model(kind);
        // Prompts of 8, 70, 5 and 40 tokens, added in that order: kept longest first, each attends in a group of rows
        // within 32 tokens (AR) or one block (4) of the group's longest, over that row's columns only.
        int[][] prompts =
        [
            [.. Enumerable.Range(0, 8).Select(i => 30 + i)],
            [.. Enumerable.Range(0, 70).Select(i => 20 + i * 3 % 150)],
            [.. Enumerable.Range(0, 5).Select(i => 60 + i * 7 % 90)],
            [.. Enumerable.Range(0, 40).Select(i => 15 + i * 5 % 120)],
        ];
        var options = new DecodeOptions { MaxNewTokens = 12 };
        DecodedSequence Alone(int[] prompt)
        {
            using var session = Open(kind, model, ragged: false);
            session.Add(prompt, options);
            var steps = new List<DecodeStep>();
            while (session.Step() is { } step) steps.Add(step);
            return DecodeCollector.Collect(steps, 1)[0];
        }
        var alone = prompts.Select(Alone).ToArray();

        var profile = new DecodeProfile();
        var all = new List<DecodeStep>();
        using (var session = Open(kind, model, profile))
        {
            foreach (var p in prompts) session.Add(p, options);
            while (session.Step() is { } step) all.Add(step);
        }
        var together = DecodeCollector.Collect(all, prompts.Length);
        for (var i = 0; i < prompts.Length; i++) Assert.Equal(alone[i].Tokens, together[i].Tokens);
        Assert.True(profile.RaggedForwards >= profile.Forwards / 2, $"ragged forwards: {profile.RaggedForwards} of {profile.Forwards}");
    }
}
