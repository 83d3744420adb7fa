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
        Assert.Equal([new RowGroup(0, 2, 2), new RowGroup(2, 2, 64)], KvCache.GroupsByLength([70, 40, 8, 5], 72, 32));
        Assert.Equal([new RowGroup(0, 1, 0), new RowGroup(1, 3, 40)], KvCache.GroupsByLength([80, 40, 39, 8], 80, 32));
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
