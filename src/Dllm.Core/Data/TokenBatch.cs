using static TorchSharp.torch;

namespace Dllm.Data;

/// <summary>
/// Token sequences [B, L] for training or scoring, with optional packed-document ids [B, L]
/// (attention never crosses documents) and an optional mask of the positions that count [B, L]
/// (null: all; false at SFT prompt tokens). Fine-tuning batches also mark <paramref name="Padding"/>: the EOS
/// that fill a response up to the batch's block-aligned length, which SFT scores (so the model learns to stop)
/// and DPO's ELBO of a response may leave out.
/// </summary>
public sealed record TokenBatch(Tensor Tokens, Tensor? DocumentIds = null, Tensor? Scored = null, Tensor? Padding = null) : IDisposable
{
    public void Dispose()
    {
        Tokens.Dispose();
        DocumentIds?.Dispose();
        Scored?.Dispose();
        Padding?.Dispose();
    }
}
