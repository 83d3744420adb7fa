namespace Dllm.Generation;

/// <summary>
/// How a token is drawn from a position's distribution. Temperature 0 is greedy (argmax).
/// TopK 0 and TopP 1 disable those filters. The seed makes sampling reproducible per sequence.
/// </summary>
public sealed record SamplingOptions(double Temperature = 0.0, int TopK = 0, double TopP = 1.0, long Seed = 0)
{
    public static SamplingOptions Greedy { get; } = new();

    /// <summary>Temperatures below this decode greedily (vLLM's convention): sampling at 1e-300 is argmax anyway.</summary>
    public const double GreedyBelow = 1e-5;

    public bool IsGreedy => Temperature < GreedyBelow;

    public void Validate()
    {
        if (!(Temperature >= 0 && double.IsFinite(Temperature))) throw new DllmException($"temperature must be a finite number >= 0, got {Temperature}");
        if (TopK < 0) throw new DllmException($"top-k must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new DllmException($"top-p must be in (0, 1], got {TopP}");
    }
}
