using Dllm.Config;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>
/// Rotary position embedding, rotate-half convention (HF Llama/Qwen/Bailing), on the first
/// <c>rotaryDim</c> dims of each head (partial rotary when smaller than head_dim).
/// Not a Module: its frequencies are derived from the config, not checkpoint tensors.
/// </summary>
public sealed class Rotary
{
    private readonly double[] _invFreq;
    public int RotaryDim { get; }

    public Rotary(ModelConfig config)
    {
        RotaryDim = config.RotaryDim;
        _invFreq = InverseFrequencies(config.RotaryDim, config.RopeTheta, config.RopeScaling);
    }

    public IReadOnlyList<double> InverseFrequency => _invFreq;

    /// <summary>inv_freq[j] = theta^(-2j/d), then the config's rope_scaling rule.</summary>
    public static double[] InverseFrequencies(int rotaryDim, double theta, RopeScaling? scaling)
    {
        var half = rotaryDim / 2;
        var inv = new double[half];
        for (var j = 0; j < half; j++) inv[j] = 1.0 / Math.Pow(theta, 2.0 * j / rotaryDim);
        if (scaling is null) return inv;
        switch (scaling.Type)
        {
            case "linear":
                for (var j = 0; j < half; j++) inv[j] /= scaling.Factor;
                break;
            case "llama3":
                // Llama 3.1: keep high frequencies, divide low ones by factor, interpolate between.
                var oldContext = (double)scaling.OriginalMaxPositionEmbeddings;
                var lowWavelen = oldContext / scaling.LowFreqFactor;
                var highWavelen = oldContext / scaling.HighFreqFactor;
                for (var j = 0; j < half; j++)
                {
                    var wavelen = 2 * Math.PI / inv[j];
                    if (wavelen < highWavelen) continue;
                    if (wavelen > lowWavelen) { inv[j] /= scaling.Factor; continue; }
                    var smooth = (oldContext / wavelen - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                    inv[j] = (1 - smooth) * inv[j] / scaling.Factor + smooth * inv[j];
                }
                break;
        }
        return inv;
    }

    /// <summary>cos and sin for positions [B, T], shaped [B, 1, T, rotaryDim] in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inv = tensor(_invFreq, dtype: ScalarType.Float64, device: positions.device).to_type(ScalarType.Float32);
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv;   // [B, T, d/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                           // [B, 1, T, d]
        var cos = emb.cos().to_type(dtype);
        var sin = emb.sin().to_type(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x [B, H, T, D] by the angles; dims past rotaryDim pass through.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var d = cos.shape[^1];
        var rot = d == x.shape[^1] ? x : x.narrow(-1, 0, d);
        var half = d / 2;
        var rotated = cat([rot.narrow(-1, half, half).neg(), rot.narrow(-1, 0, half)], -1);
        var outRot = rot * cos + rotated * sin;
        var result = d == x.shape[^1] ? outRot : cat([outRot, x.narrow(-1, d, x.shape[^1] - d)], -1);
        return result.MoveToOuterDisposeScope();
    }
}
