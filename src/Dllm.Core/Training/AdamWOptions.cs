namespace Dllm.Training;

/// <summary>AdamW hyper-parameters. Weight decay applies to matrices only (not norms, biases).</summary>
public sealed record AdamWOptions(double Beta1 = 0.9, double Beta2 = 0.95, double Epsilon = 1e-8, double WeightDecay = 0.1);
