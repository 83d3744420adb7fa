using static TorchSharp.torch;

namespace Dllm.Data;

/// <summary>
/// Token sequences [B, L] for training or scoring, with optional packed-document ids [B, L]
/// (attention never crosses documents) and an optional mask of the positions that count [B, L]
/// (null: all; false at padding and at SFT prompt tokens).
/// </summary>
public sealed record TokenBatch(Tensor Tokens, Tensor? DocumentIds = null, Tensor? Scored = null) : IDisposable
{
    public void Dispose()
    {
        Tokens.Dispose();
        DocumentIds?.Dispose();
        Scored?.Dispose();
    }
}
