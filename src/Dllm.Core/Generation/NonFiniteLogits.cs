namespace Dllm.Generation;

/// <summary>
/// Decoding met NaN or infinite logits: broken weights, or activations that overflow the compute dtype.
/// Every token after that would be garbage, so the generation stops with this error instead.
/// </summary>
public sealed class NonFiniteLogitsException()
    : DllmException("the model's logits became NaN or infinite, so decoding stopped (broken weights, or values that overflow this dtype: try --dtype float32)");

/// <summary>
/// The check rides on copies the decoders already make to the host: a row of logits with a NaN or +inf
/// makes every probability of the row NaN, so the chosen tokens' confidences show it at no extra cost.
/// </summary>
internal static class NonFiniteLogits
{
    public static void Check(ReadOnlySpan<float> confidence)
    {
        foreach (var c in confidence)
            if (!float.IsFinite(c)) throw new NonFiniteLogitsException();
    }
}
