using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Initial values for a model trained from scratch (HF's Llama init: N(0, 0.02) for matrices,
/// ones for norm gains, zeros for biases and router bias). Loading a checkpoint never calls this.
/// </summary>
public static class ModelInit
{
    public static void Randomize(CausalLM model, long seed, double std = 0.02)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed, model.Placement.Device);
        foreach (var (name, tensor) in model.state_dict())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal) || name.EndsWith("layernorm.weight", StringComparison.Ordinal))
                tensor.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith("expert_bias", StringComparison.Ordinal))
                tensor.zero_();
            else
                tensor.normal_(0.0, std, generator);
        }
    }
}
