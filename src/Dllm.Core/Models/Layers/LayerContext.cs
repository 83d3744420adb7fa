using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>
/// What every layer of one forward shares: RoPE angles for the query positions, the attention mask
/// (already folded for grouped-query attention) and the request's KV cache, if any.
/// </summary>
public sealed record LayerContext(Tensor Cos, Tensor Sin, Tensor FoldedMask, KvCache? Cache);
