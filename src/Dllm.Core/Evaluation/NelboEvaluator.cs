using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Evaluation;

/// <summary>The outcome of scoring documents: total loss, scored tokens, and the per-token bound.</summary>
public sealed record EvaluationResult(double TotalLoss, long Tokens, int Documents, int Samples)
{
    public double PerToken => Tokens == 0 ? double.NaN : TotalLoss / Tokens;
    public double Perplexity => Math.Exp(PerToken);
}

/// <summary>
/// The diffusion NELBO of METHOD.md §2 ("Evaluation"): each document on its own, unpacked (its last
/// block may be short), with S Monte-Carlo draws of mask rates and masks from fixed seeds. Reports
/// the mean over draws of the summed 1/t-weighted loss per scored token; exp of it bounds the
/// perplexity from above. With shifted labels a document's first token is not scored (it has no
/// predecessor), as the AR evaluator leaves it out.
/// </summary>
public static class NelboEvaluator
{
    public static EvaluationResult Evaluate(CausalLM model, IEnumerable<ScoredDocument> documents, int blockSize, int maskTokenId, LabelPosition labels,
        int samples, long seed, IProgress<int>? progress = null)
    {
        if (samples <= 0) throw new DllmException($"samples must be positive, got {samples}");
        using var noGrad = no_grad();
        var device = model.Placement.Device;
        double total = 0;
        long tokens = 0;
        var index = 0;
        foreach (var doc in documents)
        {
            using var scope = NewDisposeScope();
            var n = doc.Tokens.Length;
            // The S draws of one document run as one batch of S identical rows.
            var row = tensor(doc.Tokens.Select(t => (long)t).ToArray(), device: device);
            var batchTokens = row.unsqueeze(0).expand(samples, n).contiguous();
            var scored = tensor(doc.Scored, device: device).unsqueeze(0).expand(samples, n).contiguous();
            using var generator = new Generator(SeededRandom.StepSeed(seed, index, 0));
            var batch = new TokenBatch(batchTokens, Scored: scored);
            using var scorable = BlockDiffusionLoss.Scorable(batch, labels);
            using var draw = NoiseSampler.Draw(batchTokens, blockSize, maskTokenId, generator, new NoiseOptions(), scorable);
            using var result = BlockDiffusionLoss.Compute(model, batch, blockSize, draw, labels);
            // Loss is (sum over the S rows) / (S * scored): the per-token mean over draws.
            var count = labels == LabelPosition.Shift ? doc.Scored.Skip(1).Count(s => s) : doc.ScoredCount;
            total += result.Loss.item<float>() * count;
            tokens += count;
            index++;
            progress?.Report(index);
        }
        return new EvaluationResult(total, tokens, index, samples);
    }
}
