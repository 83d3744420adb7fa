using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// Pure functions from logits to tokens. The chain is: temperature, then top-k, then top-p (nucleus),
/// then either argmax (greedy) or one multinomial draw per row. Each chosen token comes with its
/// probability under the filtered distribution, the "confidence" the diffusion decoder thresholds.
/// </summary>
public static class Sampler
{
    /// <summary>logits [N, V] -> filtered logits [N, V] with excluded tokens at -inf.</summary>
    public static Tensor Filter(Tensor logits, SamplingOptions o)
    {
        using var scope = NewDisposeScope();
        var x = logits.to_type(ScalarType.Float32);
        // Shift by the row maximum first: the top logit becomes 0, so a tiny temperature (1e-300) sends the others
        // to -inf instead of turning every logit into inf and the softmax into NaN.
        if (!o.IsGreedy && o.Temperature != 1.0) x = (x - x.max(-1, keepdim: true).values) / o.Temperature;
        var vocab = x.shape[^1];
        if (o.TopK > 0 && o.TopK < vocab)
        {
            var kth = x.topk(o.TopK, dim: -1).values.narrow(-1, o.TopK - 1, 1);   // [N, 1]
            x = x.masked_fill(x.lt(kth), double.NegativeInfinity);
        }
        if (o.TopP < 1.0)
        {
            var (sorted, order) = x.sort(dim: -1, descending: true);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            // Drop a token once the mass before it already reaches p; the top token always stays.
            var drop = (cumulative - sorted.softmax(-1)).ge(o.TopP);
            var dropInVocabOrder = zeros_like(drop).scatter_(-1, order, drop);
            x = x.masked_fill(dropInVocabOrder, double.NegativeInfinity);
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Picks one token per row of logits [N, V]. Returns tokens [N] (int64) and their probabilities [N].
    /// <paramref name="generators"/> holds one generator per row (so a row's draws do not depend on the
    /// other rows in the batch); ignored when greedy.
    /// </summary>
    public static (Tensor Tokens, Tensor Confidence) Pick(Tensor logits, SamplingOptions o, IReadOnlyList<Generator>? generators = null)
    {
        using var scope = NewDisposeScope();
        // Plain greedy (no top-k or top-p, which would renormalise the confidence) skips the filter's ops.
        var filtered = o.IsGreedy && o.TopK <= 0 && o.TopP >= 1.0
            ? logits.dtype == ScalarType.Float32 ? logits : logits.to_type(ScalarType.Float32)
            : Filter(logits, o);
        var probs = filtered.softmax(-1);                                           // [N, V]
        if (o.IsGreedy)
        {
            // One reduction gives the token and its probability (half the time of argmax then gather at these sizes).
            var (p, argmax) = probs.max(-1);
            return (argmax.MoveToOuterDisposeScope(), p.MoveToOuterDisposeScope());
        }
        if (generators is null || generators.Count != probs.shape[0])
            throw new ArgumentException("sampling needs one generator per row");
        // multinomial draws on CPU so the seeded stream is the same on every device.
        var cpuProbs = probs.cpu();
        // multinomial would fail inside libtorch on NaN rows; the host copy is there anyway.
        if (!cpuProbs.isfinite().all().item<bool>()) throw new NonFiniteLogitsException();
        var picked = new long[probs.shape[0]];
        for (var i = 0; i < picked.Length; i++)
            picked[i] = cpuProbs[i].multinomial(1, generator: generators[i]).item<long>();
        var tokens = tensor(picked, device: logits.device);
        var confidence = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
        return (tokens.MoveToOuterDisposeScope(), confidence.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Like <see cref="Pick(Tensor, SamplingOptions, IReadOnlyList{Generator}?)"/> with settings per row
    /// (requests of a server batch differ in temperature, top-k, top-p and seed): rows sharing settings
    /// are filtered together.
    /// </summary>
    public static (Tensor Tokens, Tensor Confidence) Pick(Tensor logits, IReadOnlyList<SamplingOptions> perRow, IReadOnlyList<Generator> generators)
    {
        if (perRow.Distinct().Count() == 1)
            return Pick(logits, perRow[0], perRow[0].IsGreedy ? null : generators);
        using var scope = NewDisposeScope();
        var tokens = zeros(logits.shape[0], dtype: ScalarType.Int64, device: logits.device);
        var confidence = zeros(logits.shape[0], dtype: ScalarType.Float32, device: logits.device);
        foreach (var group in Enumerable.Range(0, perRow.Count).GroupBy(i => perRow[i]))
        {
            var rows = group.ToArray();
            var index = tensor(rows.Select(r => (long)r).ToArray(), device: logits.device);
            var (t, c) = Pick(logits.index_select(0, index), group.Key, group.Key.IsGreedy ? null : rows.Select(r => generators[r]).ToList());
            tokens.index_copy_(0, index, t);
            confidence.index_copy_(0, index, c.to_type(ScalarType.Float32));
        }
        return (tokens.MoveToOuterDisposeScope(), confidence.MoveToOuterDisposeScope());
    }

    public static Generator NewGenerator(long seed) => new((ulong)seed, CPU);
}
