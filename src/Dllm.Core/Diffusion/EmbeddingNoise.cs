using static TorchSharp.torch;

namespace Dllm.Diffusion;

/// <summary>
/// Masked-embedding noise (METHOD.md §2): independent N(0, (sigma * rms)^2) added to the embedding
/// output at MASK positions only, where rms is the RMS of the embedding table. It keeps early
/// conversion from spiking while every MASK input shares one embedding vector.
/// </summary>
public static class EmbeddingNoise
{
    public static Tensor Apply(Tensor embeddings, Tensor atMask, Tensor table, double sigma, Generator? generator)
    {
        using var scope = NewDisposeScope();
        Tensor noise;
        using (no_grad())
        {
            // The noise is a constant input: no gradient flows into the table through its scale. The scale stays on the
            // device (no host read per forward); sigma * rms is formed in float64 from the float32 RMS, as a host product was.
            var scale = table.to_type(ScalarType.Float32).pow(2).mean().sqrt().to_type(ScalarType.Float64).mul(sigma);
            noise = randn(embeddings.shape, generator: generator, dtype: ScalarType.Float32).to(embeddings.device).mul(scale).to_type(embeddings.dtype);
        }
        var result = embeddings + noise * atMask.unsqueeze(-1).to_type(embeddings.dtype);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Linear anneal from sigma at step 0 to 0 at <paramref name="annealSteps"/>.</summary>
    public static double Sigma(double initial, long step, long annealSteps) =>
        annealSteps <= 0 ? 0 : initial * Math.Max(0, 1 - (double)step / annealSteps);
}
