using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Evaluation;

/// <summary>
/// Exact autoregressive negative log-likelihood per token: each scored token predicted from the
/// tokens before it. The first token of a document is context only.
/// </summary>
public static class ArNllEvaluator
{
    public static EvaluationResult Evaluate(CausalLM model, IEnumerable<ScoredDocument> documents, IProgress<int>? progress = null)
    {
        using var noGrad = no_grad();
        var device = model.Placement.Device;
        double total = 0;
        long tokens = 0;
        var index = 0;
        foreach (var doc in documents)
        {
            using var scope = NewDisposeScope();
            var n = doc.Tokens.Length;
            if (n < 2) { index++; progress?.Report(index); continue; }
            var ids = tensor(doc.Tokens.Select(t => (long)t).ToArray(), device: device);
            var logits = model.Forward(ids.unsqueeze(0))[0].narrow(0, 0, n - 1);
            var ce = nn.functional.cross_entropy(logits, ids.narrow(0, 1, n - 1), reduction: nn.Reduction.None);
            var scored = tensor(doc.Scored.Skip(1).ToArray(), device: device);
            total += ce.masked_select(scored).sum().item<float>();
            tokens += doc.Scored.Skip(1).Count(s => s);
            index++;
            progress?.Report(index);
        }
        return new EvaluationResult(total, tokens, index, 1);
    }
}
