namespace Dllm.Config;

/// <summary>
/// Sane ranges for the numbers in config.json, checked once after reading. The limits are far beyond any
/// published model (the largest have ~130 layers, hidden 25k, vocabularies of 256k); a value outside them is
/// a corrupt or mistyped file, refused here with the field's name rather than discovered as a
/// multi-terabyte allocation, a hang or NaN logits. Shapes are checked against the weights separately
/// (<see cref="Models.ModelFolderCheck"/>); these bounds also cover configs that have no weights yet (pretrain).
/// </summary>
public static class ConfigBounds
{
    public const int MaxVocabSize = 1 << 24;
    public const int MaxHiddenSize = 1 << 17;
    public const int MaxIntermediateSize = 1 << 20;
    public const int MaxLayers = 10_000;
    public const int MaxHeads = 1 << 12;
    public const int MaxHeadDim = 1 << 12;
    public const int MaxContext = 1 << 24;
    public const int MaxExperts = 1 << 14;

    /// <exception cref="DllmException">A field is out of range; the message starts with <paramref name="source"/>.</exception>
    public static void Check(ModelConfig c, string source)
    {
        void Fail(string message) => throw new DllmException($"{source}: {message}");
        void Range(string field, long value, long min, long max)
        {
            if (value < min || value > max) Fail($"{field} is {value}, outside the sane range {min}..{max:N0}");
        }

        Range("vocab_size", c.VocabSize, 1, MaxVocabSize);
        Range("hidden_size", c.HiddenSize, 1, MaxHiddenSize);
        Range("intermediate_size", c.IntermediateSize, 1, MaxIntermediateSize);
        Range("num_hidden_layers", c.NumLayers, 1, MaxLayers);
        Range("num_attention_heads", c.NumHeads, 1, MaxHeads);
        Range("num_key_value_heads", c.NumKvHeads, 1, c.NumHeads);
        Range("head_dim", c.HeadDim, 1, MaxHeadDim);
        Range("max_position_embeddings", c.MaxPositionEmbeddings, 1, MaxContext);

        // RoPE frequencies are theta^(-2j/d): theta must exceed 1 for them to fall with j (0 gives inf, 1 gives no positions at all).
        if (!(double.IsFinite(c.RopeTheta) && c.RopeTheta > 1))
            Fail($"rope_theta must be a finite number above 1, got {c.RopeTheta}");
        // eps keeps RMSNorm's rsqrt finite on a zero vector; a negative one can make it NaN.
        if (!(double.IsFinite(c.RmsNormEps) && c.RmsNormEps > 0 && c.RmsNormEps < 1))
            Fail($"rms_norm_eps must be a positive number below 1, got {c.RmsNormEps}");
        if (c.RopeScaling is { } s)
        {
            if (!(double.IsFinite(s.Factor) && s.Factor > 0)) Fail($"rope_scaling.factor must be a positive number, got {s.Factor}");
            if (s.Type == "llama3")
            {
                if (!(s.LowFreqFactor > 0 && double.IsFinite(s.HighFreqFactor) && s.HighFreqFactor > s.LowFreqFactor))
                    Fail($"rope_scaling needs 0 < low_freq_factor < high_freq_factor, got {s.LowFreqFactor} and {s.HighFreqFactor}");
                if (s.OriginalMaxPositionEmbeddings <= 0)
                    Fail($"rope_scaling.original_max_position_embeddings must be positive, got {s.OriginalMaxPositionEmbeddings}");
            }
        }

        // Special ids index the embedding table; one outside it fails mid-generation or never stops it.
        if (c.BosTokenId is { } bos) InVocabulary("bos_token_id", bos);
        foreach (var eos in c.EosTokenIds) InVocabulary("eos_token_id", eos);
        if (c.PadTokenId is { } pad) InVocabulary("pad_token_id", pad);
        if (c.MaskTokenId is { } mask) InVocabulary("mask_token_id", mask);

        if (c.Moe is { } m)
        {
            Range("num_experts", m.NumExperts, 1, MaxExperts);
            Range("num_experts_per_tok", m.NumExpertsPerToken, 1, m.NumExperts);
            Range("num_shared_experts", m.NumSharedExperts ?? 0, 0, 64);
            Range("moe_intermediate_size", m.MoeIntermediateSize, 1, MaxIntermediateSize);
            Range("shared expert width (moe_shared_expert_intermediate_size x num_shared_experts)", m.SharedExpertIntermediateSize, 0, MaxIntermediateSize);
            Range("first_k_dense_replace", m.FirstKDenseReplace, 0, c.NumLayers);
            Range("num_nextn_predict_layers", m.NumNextnPredictLayers, 0, MaxLayers);
            if (!(double.IsFinite(m.RoutedScalingFactor) && m.RoutedScalingFactor > 0))
                Fail($"routed_scaling_factor must be a positive number, got {m.RoutedScalingFactor}");
        }
        if (c.Diffusion is { } d) Range("dllm.block_size", d.BlockSize, 1, c.MaxPositionEmbeddings);

        void InVocabulary(string field, int id)
        {
            if (id < 0 || id >= c.VocabSize) Fail($"{field} {id} is outside the vocabulary (vocab_size {c.VocabSize})");
        }
    }
}
