using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// Clean training sequences [B, L] with optional packed-document ids [B, L] (attention never crosses
/// documents) and an optional mask of positions that count (null: all; padding and SFT prompts are false).
/// </summary>
public sealed record DiffusionBatch(Tensor Tokens, Tensor? DocumentIds = null, Tensor? Scored = null);
