using Dllm.Attention;
using Dllm.Data;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>Next-token cross-entropy under a causal mask (ANDed with the document mask): AR pre-training.</summary>
public sealed class ArObjective : ITrainingObjective
{
    public string Name => "ar";

    public int BlockSizeAt(long step) => 1;

    public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context) => Loss(model, batch);

    /// <summary>What an AR model attends to over a packed batch: earlier tokens of the same document.</summary>
    internal static Tensor Mask(TokenBatch batch)
    {
        var tokens = batch.Tokens;
        using var scope = NewDisposeScope();
        var mask = AttentionMasks.Causal(tokens.shape[1], device: tokens.device);
        if (batch.DocumentIds is { } docs) mask = mask.logical_and(AttentionMasks.SameDocument(docs, docs));
        return mask.MoveToOuterDisposeScope();
    }

    public static ObjectiveResult Loss(CausalLM model, TokenBatch batch)
    {
        using var scope = NewDisposeScope();
        var tokens = batch.Tokens;
        long b = tokens.shape[0], l = tokens.shape[1];
        var logits = model.Forward(tokens, mask: Mask(batch)).narrow(1, 0, l - 1);
        var targets = tokens.narrow(1, 1, l - 1);
        var ce = nn.functional.cross_entropy(logits.reshape((l - 1) * b, -1), targets.reshape(-1), reduction: nn.Reduction.None).reshape(b, l - 1);
        Tensor loss, count;
        if (batch.Scored is { } scored)
        {
            var s = scored.narrow(1, 1, l - 1);
            count = s.sum();
            loss = ce.where(s, zeros_like(ce)).sum() / count.clamp_min(1);
        }
        else
        {
            count = tensor(b * (l - 1), device: tokens.device);
            loss = ce.mean();
        }
        return new ObjectiveResult(loss.MoveToOuterDisposeScope(), count.MoveToOuterDisposeScope());
    }
}
