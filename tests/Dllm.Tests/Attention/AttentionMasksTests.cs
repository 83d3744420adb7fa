using Dllm.Attention;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Attention;

public class AttentionMasksTests
{
    public AttentionMasksTests() => TorchRuntime.EnsureLoaded();

    private static bool[,] ToArray(Tensor m)
    {
        var rows = (int)m.shape[^2];
        var cols = (int)m.shape[^1];
        var flat = m.reshape(rows, cols).data<bool>().ToArray();
        var result = new bool[rows, cols];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < cols; j++) result[i, j] = flat[i * cols + j];
        return result;
    }

    [Theory]
    [InlineData(5, 0)]
    [InlineData(3, 4)]
    public void CausalMatchesDefinition(int queries, int past)
    {
        using var m = AttentionMasks.Causal(queries, past);
        var a = ToArray(m);
        Assert.Equal(past + queries, a.GetLength(1));
        for (var i = 0; i < queries; i++)
            for (var j = 0; j < past + queries; j++)
                Assert.Equal(j <= past + i, a[i, j]);
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 3)]
    [InlineData(2, 1)]
    public void CachedBlocksSeeValidCacheKeysEarlierNewBlocksAndTheirOwnBlock(int newBlocks, int block)
    {
        // Row 0 has two padded cache slots in front, row 1 none.
        using var valid = tensor(new[] { false, false, true, true, true, true, true, true, true, true }, new long[] { 2, 5 });
        using var m = AttentionMasks.CachedBlocks(valid, newBlocks, block);
        var t = newBlocks * block;
        Assert.Equal(new long[] { 2, 1, t, 5 + t }, m.shape);
        for (var r = 0; r < 2; r++)
        {
            var a = ToArray(m[r]);
            for (var i = 0; i < t; i++)
                for (var j = 0; j < 5 + t; j++)
                {
                    var expected = j < 5 ? valid[r, j].item<bool>() : (j - 5) / block <= i / block;
                    Assert.Equal(expected, a[i, j]);
                }
        }
        // The general path (new tokens' validity given, here all valid) builds the same mask as the fast one.
        using var general = AttentionMasks.CachedBlocks(valid, newBlocks, block, ones(2, t, dtype: ScalarType.Bool));
        Assert.True(general.eq(m).all().item<bool>());
    }

    [Theory]
    [InlineData(8, 1)]
    [InlineData(8, 2)]
    [InlineData(8, 3)]   // last block is short
    [InlineData(8, 8)]
    public void BlockDiffusionMatchesMethodDefinition(int length, int block)
    {
        using var m = AttentionMasks.BlockDiffusion(length, block);
        var a = ToArray(m);
        Assert.Equal(2 * length, a.GetLength(0));
        for (var i = 0; i < 2 * length; i++)
            for (var j = 0; j < 2 * length; j++)
            {
                bool qNoisy = i < length, kNoisy = j < length;
                int qb = (i % length) / block, kb = (j % length) / block;
                bool expected = (qNoisy, kNoisy) switch
                {
                    (true, true) => qb == kb,    // noisy block b sees its own noisy block
                    (true, false) => kb < qb,    // ... and clean blocks before it
                    (false, false) => kb <= qb,  // clean sees clean blocks up to its own
                    (false, true) => false,      // clean never sees noisy
                };
                Assert.True(expected == a[i, j], $"L={length} B={block} ({i},{j}) expected {expected}");
            }
    }

    [Theory]
    [InlineData(8, 2, 1)]
    [InlineData(8, 3, 2)]   // last block short: the clean stream stops at 6
    [InlineData(9, 3, 2)]
    public void ACleanStreamStoppingBeforeTheLastBlockIsTheFullMaskWithoutItsUnreadColumns(int length, int block, int views)
    {
        var clean = AttentionMasks.CleanStreamLength(length, block);
        Assert.Equal((length - 1) / block * block, clean);
        using var full = AttentionMasks.BlockDiffusion(length, block, views: views);
        using var cut = AttentionMasks.BlockDiffusion(length, block, views: views, cleanLength: clean);
        var kept = views * length + clean;
        Assert.Equal(new long[] { kept, kept }, cut.shape);
        Assert.True(cut.eq(full.narrow(0, 0, kept).narrow(1, 0, kept)).all().item<bool>());
        // What is cut is never read: no noisy query attends to the clean copy of the last block.
        Assert.False(full.narrow(0, 0, views * length).narrow(1, kept, length - clean).any().item<bool>());
    }

    [Fact]
    public void BlockDiffusionOnSmallCaseIsTheHandWrittenMatrix()
    {
        // L = 4, B = 2: rows are x_t[0..3] then x[0..3].
        var expected = new[]
        {
            "11000000",
            "11000000",
            "00111100",
            "00111100",
            "00001100",
            "00001100",
            "00001111",
            "00001111",
        };
        using var m = AttentionMasks.BlockDiffusion(4, 2);
        var a = ToArray(m);
        for (var i = 0; i < 8; i++)
            Assert.Equal(expected[i], string.Concat(Enumerable.Range(0, 8).Select(j => a[i, j] ? '1' : '0')));
    }

    [Fact]
    public void BlockCausalWithBlockOneIsCausalAndWithOneBlockIsBidirectional()
    {
        using var pos = arange(6);
        using var causal = AttentionMasks.Causal(6);
        using var b1 = AttentionMasks.BlockCausal(pos, pos, 1);
        Assert.True(b1.eq(causal).all().item<bool>());
        using var full = AttentionMasks.BlockCausal(pos, pos, 6);
        Assert.True(full.all().item<bool>());
    }

    [Fact]
    public void BlockCausalFollowsAbsoluteBlocks()
    {
        // Queries at positions 5..7 (block 1 for B = 4) over keys 0..7.
        using var q = arange(5, 8);
        using var k = arange(0, 8);
        var a = ToArray(AttentionMasks.BlockCausal(q, k, 4));
        for (var i = 0; i < 3; i++)
            for (var j = 0; j < 8; j++)
                Assert.True(a[i, j], $"({i},{j}) must be visible: every key is in block 0 or 1");
        var b = ToArray(AttentionMasks.BlockCausal(arange(2, 4), k, 4));
        for (var j = 0; j < 8; j++) Assert.Equal(j < 4, b[0, j]);
    }

    [Fact]
    public void SameDocumentSeparatesPackedDocuments()
    {
        using var ids = tensor(new long[] { 0, 0, 1, 1, 1, 2 });
        var a = ToArray(AttentionMasks.SameDocument(ids, ids));
        var d = new[] { 0, 0, 1, 1, 1, 2 };
        for (var i = 0; i < 6; i++)
            for (var j = 0; j < 6; j++) Assert.Equal(d[i] == d[j], a[i, j]);
    }

    [Fact]
    public void PaddingHidesPadKeysAndKeepsPadRowsFinite()
    {
        using var causal = AttentionMasks.Causal(4);
        using var valid = tensor(new[] { false, false, true, true, true, true, true, true }, new long[] { 2, 4 });
        using var m = AttentionMasks.WithPadding(causal, valid);
        Assert.Equal(new long[] { 2, 1, 4, 4 }, m.shape);
        var row0 = m[0, 0].data<bool>().ToArray();
        // Query 0 and 1 of sequence 0 are padding: each sees only itself.
        Assert.Equal(new[] { true, false, false, false }, row0[0..4]);
        Assert.Equal(new[] { false, true, false, false }, row0[4..8]);
        // Query 2 (first real token) sees itself but not the pads.
        Assert.Equal(new[] { false, false, true, false }, row0[8..12]);
        Assert.Equal(new[] { false, false, true, true }, row0[12..16]);
        Assert.True(m[1, 0].eq(causal).all().item<bool>());
    }
}
