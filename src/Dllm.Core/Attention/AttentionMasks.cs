using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Attention;

/// <summary>
/// The one place attention masks are built. Every mask is a bool tensor where true means
/// "the query (row) may attend to the key (column)", shaped [T, S] or [B, 1, T, S] so it
/// broadcasts over heads. The model takes masks as data; it never decides them.
/// </summary>
public static class AttentionMasks
{
    /// <summary>Causal mask for T new queries after <paramref name="past"/> cached keys: [T, past + T].</summary>
    public static Tensor Causal(long queries, long past = 0, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var rows = arange(queries, device: device).unsqueeze(1) + past;   // [T, 1] absolute query index
        var cols = arange(past + queries, device: device).unsqueeze(0);   // [1, S]
        return cols.le(rows).MoveToOuterDisposeScope();
    }

    /// <summary>Everything attends to everything: [T, S].</summary>
    public static Tensor Bidirectional(long queries, long keys, Device? device = null) =>
        ones(queries, keys, dtype: ScalarType.Bool, device: device);

    /// <summary>
    /// Block-causal mask from absolute positions: a query attends to every key whose block
    /// (position / blockSize) is not after its own. Block size 1 is causal; one block spanning
    /// everything is bidirectional. Used by block decoding, where the current block sees the
    /// cache and itself. positions: [T] or [B, T] queries and [S] or [B, S] keys.
    /// </summary>
    public static Tensor BlockCausal(Tensor queryPositions, Tensor keyPositions, long blockSize)
    {
        using var scope = NewDisposeScope();
        var qb = queryPositions.div(blockSize, rounding_mode: RoundingMode.floor).unsqueeze(-1); // [..., T, 1]
        var kb = keyPositions.div(blockSize, rounding_mode: RoundingMode.floor).unsqueeze(-2);   // [..., 1, S]
        return kb.le(qb).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Block decoding on a KV cache: the queries are <paramref name="newBlocks"/> consecutive blocks of
    /// <paramref name="blockSize"/> tokens after the cached keys. Every new token sees the valid cached keys
    /// (<paramref name="cachedValid"/> [R, C], false at left padding), the new blocks before its own, and its own
    /// block bidirectionally. <paramref name="newValid"/> [R, T] marks new tokens that are padding (a row with
    /// nothing to commit); null: all are real. Returns [R, 1, T, C + T] with T = newBlocks * blockSize.
    /// </summary>
    public static Tensor CachedBlocks(Tensor cachedValid, int newBlocks, long blockSize, Tensor? newValid = null)
    {
        using var scope = NewDisposeScope();
        var device = cachedValid.device;
        long rows = cachedValid.shape[0], cached = cachedValid.shape[1], t = newBlocks * blockSize;
        // The new blocks' own pattern is the same every call: built on the host, it is one tensor instead of six ops.
        var pattern = new bool[t * t];
        for (var q = 0; q < t; q++)
            for (var k = 0; k < t; k++) pattern[q * t + k] = k / blockSize <= q / blockSize;
        var own = tensor(pattern, [t, t], device: device);                                     // [T, T]
        if (newValid is null)
        {
            // Every new token sees at least its own block, so no query row is empty: no guard needed. This is the
            // decoder's every-step mask, built with the fewest ops.
            return cat([cachedValid.unsqueeze(1).expand(rows, t, cached), own.unsqueeze(0).expand(rows, t, t)], 2).unsqueeze(1).MoveToOuterDisposeScope();
        }
        var mask = cat([ones(t, cached, dtype: ScalarType.Bool, device: device), own], 1);
        return WithPadding(mask, cat([cachedValid, newValid], 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The block-diffusion training mask over the concatenation [x_t ; x] of length 2L (METHOD.md §2.3):
    /// a noisy token of block b sees the noisy tokens of block b and the clean tokens of blocks &lt; b;
    /// a clean token of block b sees the clean tokens of blocks &lt;= b. The last block may be short.
    /// With <paramref name="views"/> &gt; 1 the sequence is [x_t^1 ; ... ; x_t^v ; x]: several noisy views of
    /// one clean sequence (complementary masking's pair), each blind to the others, all reading the one clean
    /// stream, which is then computed once instead of once per view. Returns [(v+1)L, (v+1)L]; with
    /// <paramref name="cleanLength"/> C the clean stream holds only x's first C positions, [vL + C, vL + C].
    /// </summary>
    public static Tensor BlockDiffusion(long length, long blockSize, Device? device = null, int views = 1, long? cleanLength = null)
    {
        if (views < 1) throw new ArgumentOutOfRangeException(nameof(views), views, "at least one noisy view");
        var c = cleanLength ?? length;
        if (c < 0 || c > length) throw new ArgumentOutOfRangeException(nameof(cleanLength), c, $"the clean stream holds at most the {length} positions of x");
        using var scope = NewDisposeScope();
        var block = arange(length, device: device).div(blockSize, rounding_mode: RoundingMode.floor);
        var qb = block.unsqueeze(1);   // [L, 1]
        var kb = block.unsqueeze(0);   // [1, L]
        var noisyToNoisy = qb.eq(kb);
        var noisyToClean = kb.lt(qb).narrow(1, 0, c);
        var cleanToClean = kb.le(qb).narrow(0, 0, c).narrow(1, 0, c);
        var none = zeros(length, length, dtype: ScalarType.Bool, device: device);
        var rows = new List<Tensor>();
        for (var view = 0; view < views; view++)
            rows.Add(cat([.. Enumerable.Range(0, views).Select(other => other == view ? noisyToNoisy : none), noisyToClean], 1));
        rows.Add(cat([.. Enumerable.Repeat(none.narrow(0, 0, c), views), cleanToClean], 1));
        return cat(rows, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How much of x the clean stream of the training input [x_t ; x] needs: everything before the last block. Clean
    /// tokens serve only as keys for later blocks' noisy tokens (and, with shifted labels, a block's first slot reads
    /// the clean output just before it), so the last block's clean copy would be computed and never read.
    /// </summary>
    public static long CleanStreamLength(long length, long blockSize) => (length - 1) / blockSize * blockSize;

    /// <summary>
    /// Same-document mask from packed-sequence document ids [B, T] (or [T]) against key ids [B, S]
    /// (or [S]): true where query and key belong to the same document. AND it with any other mask.
    /// </summary>
    public static Tensor SameDocument(Tensor queryDocIds, Tensor keyDocIds) =>
        queryDocIds.unsqueeze(-1).eq(keyDocIds.unsqueeze(-2));

    /// <summary>
    /// Combines a [T, S] or [B, T, S] mask with a key-validity mask [B, S] (false at left padding)
    /// into the model's [B, 1, T, S] form. Query rows left with no key (padding queries) are allowed
    /// to see themselves so attention stays finite; their outputs are never read.
    /// </summary>
    public static Tensor WithPadding(Tensor mask, Tensor validKeys)
    {
        using var scope = NewDisposeScope();
        var batch = validKeys.shape[0];
        var keys = validKeys.shape[1];
        var m = mask.dim() == 2 ? mask.unsqueeze(0) : mask;              // [B|1, T, S]
        m = m.logical_and(validKeys.unsqueeze(1));                         // [B, T, S]
        var queries = m.shape[1];
        var empty = m.any(-1).logical_not();                               // [B, T]
        // Query t of the T new tokens sits at key index S - T + t; no host sync needed to test for empties.
        var self = eye(queries, dtype: ScalarType.Bool, device: mask.device);
        var diag = cat([zeros(queries, keys - queries, dtype: ScalarType.Bool, device: mask.device), self], 1); // [T, S]
        m = m.logical_or(empty.unsqueeze(-1).logical_and(diag.unsqueeze(0)));
        return m.expand(batch, queries, keys).unsqueeze(1).MoveToOuterDisposeScope();
    }
}
