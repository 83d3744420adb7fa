namespace Dllm.Config;

/// <summary>
/// What the official Ling 2.0 / LLaDA2 code assumes when a config.json omits a field: the defaults of
/// LLaDA2MoeConfig and BailingMoeV2Config (identical in the published configuration files) and what their
/// modeling code then builds. The reader applies them; the LLaDA2 exporter writes every field whose default
/// would be wrong for the model it writes.
/// </summary>
public static class BailingDefaults
{
    public const double PartialRotaryFactor = 0.5;
    public const double RmsNormEps = 1e-5;
    public const double RoutedScalingFactor = 2.5;
    public const int NumGroups = 8;
    public const int TopKGroups = 4;
    public const int NumExperts = 16;
    public const int NumExpertsPerToken = 2;
    public const int NumSharedExperts = 0;
    /// <summary>Bias on attention.dense (and, in SGLang, on query_key_value and every MLP projection too).</summary>
    public const bool UseBias = true;
    public const bool UseQkvBias = false;
    public const int MaxPositionEmbeddings = 16384;
    public const double RopeTheta = 10000.0;
    /// <summary>The embedding's padding_idx in the official code: an id past small vocabularies, where nn.Embedding refuses it.</summary>
    public const int PadTokenId = 126081;
    public const bool TieWordEmbeddings = false;
}
