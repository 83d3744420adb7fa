using System.Text.RegularExpressions;
using Dllm.Config;

namespace Dllm.Models;

/// <summary>
/// Which checkpoint tensors a loader may skip because they never touch the main logits:
/// RoPE caches some exporters save, a tied lm_head copy, and Ling's multi-token-prediction layers.
/// Everything else must match the module tree exactly.
/// </summary>
public static partial class CheckpointNames
{
    public static bool IsIgnorable(string name, ModelConfig config)
    {
        if (name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)) return true;
        if (config.TieWordEmbeddings && name == "lm_head.weight") return true;
        if (config.Moe is { NumNextnPredictLayers: > 0 } && LayerIndex().Match(name) is { Success: true } m
            && int.Parse(m.Groups[1].Value) >= config.NumLayers)
            return true;
        return false;
    }

    /// <summary>
    /// Module tensors a checkpoint may lack, left at zero as the official code leaves them: empty tensors (a
    /// zero-width shared expert), the router bias of a model without one, and attention.dense.bias when a
    /// Bailing config omits use_bias (the class default builds the bias; HF initialises missing biases to zero).
    /// </summary>
    public static bool MayBeAbsent(string name, long elements, ModelConfig config) =>
        elements == 0
        || (name.EndsWith("mlp.gate.expert_bias", StringComparison.Ordinal) && config.Moe is { UseExpertBias: false })
        || (config.Family == ModelFamily.BailingMoe && name.EndsWith("attention.dense.bias", StringComparison.Ordinal) && !config.Raw.ContainsKey("use_bias"));

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerIndex();
}
