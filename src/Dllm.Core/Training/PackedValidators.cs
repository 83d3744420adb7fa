using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>Fixed held-out rows [N, L] with document ids, shared by the validators below.</summary>
public sealed record ValidationRows(long[][] Tokens, int[][] DocumentIds)
{
    public int Count => Tokens.Length;

    public IEnumerable<TokenBatch> Batches(int batchSize, Device device)
    {
        for (var i = 0; i < Count; i += batchSize)
        {
            var n = Math.Min(batchSize, Count - i);
            var l = Tokens[i].Length;
            yield return new TokenBatch(
                tensor(Tokens.Skip(i).Take(n).SelectMany(r => r).ToArray(), new long[] { n, l }, device: device),
                tensor(DocumentIds.Skip(i).Take(n).SelectMany(r => r.Select(x => (long)x)).ToArray(), new long[] { n, l }, device: device));
        }
    }
}

/// <summary>Validation NELBO per token at a fixed block size with fixed draws (same masks at every evaluation).</summary>
public sealed class DiffusionValidator(ValidationRows rows, int blockSize, int maskTokenId, LabelPosition labels, int batchSize = 8, long seed = 1234) : IValidator
{
    public string Metric => $"valid_nelbo_b{blockSize}";

    public double Evaluate(CausalLM model)
    {
        double total = 0, count = 0;
        var index = 0;
        foreach (var batch in rows.Batches(batchSize, model.Placement.Device))
        {
            using var scope = NewDisposeScope();
            using var _ = batch;
            using var generator = new Generator(SeededRandom.StepSeed(seed, index++, 0));
            using var draw = NoiseSampler.Draw(batch.Tokens, blockSize, maskTokenId, generator, new NoiseOptions(), BlockDiffusionLoss.Scorable(batch, labels));
            using var result = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels);
            total += result.Terms.sum().item<float>();
            count += result.TokenCount.item<long>();
        }
        return total / Math.Max(1, count);
    }
}

/// <summary>Validation next-token NLL per token (AR pre-training).</summary>
public sealed class ArValidator(ValidationRows rows, int batchSize = 8) : IValidator
{
    public string Metric => "valid_nll";

    public double Evaluate(CausalLM model)
    {
        double total = 0, count = 0;
        foreach (var batch in rows.Batches(batchSize, model.Placement.Device))
        {
            using var scope = NewDisposeScope();
            using var _ = batch;
            var r = ArObjective.Loss(model, batch);
            var tokens = r.Tokens.item<long>();
            total += r.Loss.item<float>() * tokens;
            count += tokens;
        }
        return total / Math.Max(1, count);
    }
}
