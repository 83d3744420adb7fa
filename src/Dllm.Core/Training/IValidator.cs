using Dllm.Models;

namespace Dllm.Training;

/// <summary>A held-out metric (lower is better) computed with fixed randomness, so checkpoints compare fairly.</summary>
public interface IValidator
{
    string Metric { get; }
    double Evaluate(CausalLM model);
}
