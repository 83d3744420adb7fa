namespace Dllm.Config;

/// <summary>
/// HF <c>rope_scaling</c>. Supported: "default" (none), "linear" (positions divided by factor) and
/// "llama3" (frequency-dependent interpolation of Llama 3.1). Others fail at load time.
/// </summary>
public sealed record RopeScaling(
    string Type,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192)
{
    public static readonly string[] Supported = ["default", "linear", "llama3"];
}
