using Dllm.Data;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>What a training step knows when it computes a loss: the step, its private random stream,
/// and the annealed masked-embedding noise level.</summary>
public sealed record ObjectiveContext(long Step, Generator Generator, double EmbeddingNoise);

/// <summary>
/// A micro-batch's loss (mean over its scored tokens) and the tokens it trained on (a 0-d integer tensor).
/// <paramref name="Extra"/> holds objective-specific diagnostics (e.g. DPO rewards, 0-d tensors), averaged over
/// micro-batches into metrics.jsonl. All stay on the device: the trainer reads a step's numbers to the host in one
/// transfer (on a GPU every read waits for the queue to drain).
/// </summary>
public sealed record ObjectiveResult(Tensor Loss, Tensor Tokens, IReadOnlyDictionary<string, Tensor>? Extra = null);

/// <summary>A training loss as a pure function of model, batch and context. The trainer owns everything else.</summary>
public interface ITrainingObjective
{
    string Name { get; }

    /// <summary>Block size in force at a step (1 for AR), for logs and plots.</summary>
    int BlockSizeAt(long step);

    ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context);
}
