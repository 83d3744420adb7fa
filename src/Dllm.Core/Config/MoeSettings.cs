namespace Dllm.Config;

/// <summary>
/// Mixture-of-experts fields of Ling 2.0 / LLaDA2.0 configs (names as in their config.json).
/// Layers below <see cref="FirstKDenseReplace"/> use a dense SwiGLU of <c>intermediate_size</c>.
/// Multi-token-prediction layers (Ling base models, <c>num_nextn_predict_layers</c>) never touch the
/// main logits; we skip their tensors when loading. <see cref="NumSharedExperts"/> null (an explicit JSON null)
/// means no shared-expert module; 0 means a zero-width one, as the official code builds it.
/// </summary>
public sealed record MoeSettings(
    int NumExperts,
    int NumExpertsPerToken,
    int? NumSharedExperts,
    int MoeIntermediateSize,
    int SharedExpertIntermediateSize,
    int NumGroups,
    int TopKGroups,
    double RoutedScalingFactor,
    bool NormTopKProb,
    bool UseExpertBias,
    int FirstKDenseReplace,
    string ScoreFunction,
    int NumNextnPredictLayers);
