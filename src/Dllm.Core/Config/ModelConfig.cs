using System.Text.Json.Nodes;

namespace Dllm.Config;

/// <summary>
/// An immutable view of an HF <c>config.json</c>: the fields that shape the forward pass, validated
/// once by <see cref="ModelConfigReader"/>. <see cref="Raw"/> keeps the file as read so that
/// <see cref="ModelConfigWriter"/> can write back every field we do not model.
/// Dtype and device are load options, never part of the config.
/// </summary>
public sealed record ModelConfig
{
    public required string Architecture { get; init; }
    public required string ModelType { get; init; }
    public required ModelFamily Family { get; init; }

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    /// <summary>Width of the dense SwiGLU (all layers for dense models, the first-k layers for MoE).</summary>
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int MaxPositionEmbeddings { get; init; }

    public required double RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>How many leading dims of each head RoPE rotates (head_dim unless partial rotary).</summary>
    public required int RotaryDim { get; init; }

    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on the q/k/v projections (Qwen2; Llama's attention_bias; Bailing's use_qkv_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on the attention output projection (Llama's attention_bias; Bailing's use_bias).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Per-head RMSNorm on q and k before RoPE (Qwen3, Bailing use_qk_norm).</summary>
    public bool QkNorm { get; init; }

    public MoeSettings? Moe { get; init; }

    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    /// <summary>The MASK token id of a diffusion LM (METHOD.md §1); null for a plain AR checkpoint.</summary>
    public int? MaskTokenId { get; init; }
    /// <summary>Block-diffusion settings recorded by conversion; null for AR checkpoints.</summary>
    public DiffusionSettings? Diffusion { get; init; }
    /// <summary>Where the model reads a token's prediction: as recorded by conversion; same-position for every other checkpoint (LLaDA2's format).</summary>
    public LabelPosition Labels => Diffusion?.Labels ?? LabelPosition.Same;

    public required JsonObject Raw { get; init; }

    public int QueriesPerKvHead => NumHeads / NumKvHeads;

    /// <summary>True for checkpoints trained as diffusion LMs: ones we converted, and LLaDA2.0 releases.</summary>
    public bool IsDiffusion => Diffusion is not null || Architecture == ModelConfigReader.LLaDA2Architecture;

    public bool IsMoeLayer(int layer) => Moe is not null && layer >= Moe.FirstKDenseReplace;
}

/// <summary>
/// What a converted checkpoint records about its diffusion training (the "dllm" section of config.json):
/// the block size it was last trained at (every verb's default) and where its logits put their labels.
/// </summary>
public sealed record DiffusionSettings(int BlockSize, LabelPosition Labels = LabelPosition.Same)
{
    /// <summary>LLaDA2.0's block size: the default wherever a checkpoint records none.</summary>
    public const int DefaultBlockSize = 32;
}

/// <summary>
/// Which output predicts a masked token (METHOD.md §2). <see cref="Same"/>: the output at the token's own
/// position (LLaDA2.0, SDAR; what the official format expects). <see cref="Shift"/> ("token shift", Dream,
/// Fast-dLLM v2): the output at the position before it, so the AR model's next-token head is reused.
/// </summary>
public enum LabelPosition { Same, Shift }

public static class LabelPositions
{
    public static string Name(this LabelPosition labels) => labels == LabelPosition.Shift ? "shift" : "same";

    /// <exception cref="DllmException">Neither "same" nor "shift".</exception>
    public static LabelPosition Parse(string name) => name switch
    {
        "same" => LabelPosition.Same,
        "shift" => LabelPosition.Shift,
        _ => throw new DllmException($"labels must be 'same' or 'shift', got '{name}'"),
    };
}

/// <summary>The transformer families we can run: Llama, Qwen2 and Qwen3 run as Models/Llama.cs, BailingMoe as Models/LLaDA2Moe.cs.</summary>
public enum ModelFamily
{
    /// <summary>LlamaForCausalLM: RMSNorm, RoPE, SwiGLU, GQA, optional attention bias.</summary>
    Llama,
    /// <summary>Qwen2ForCausalLM: Llama plus q/k/v bias.</summary>
    Qwen2,
    /// <summary>Qwen3ForCausalLM: Llama plus per-head q/k RMSNorm before RoPE, explicit head_dim.</summary>
    Qwen3,
    /// <summary>BailingMoeV2ForCausalLM (Ling 2.0) and LLaDA2MoeModelLM (LLaDA2.0): fused QKV, partial rotary, sigmoid-routed MoE.</summary>
    BailingMoe,
}

/// <summary>
/// HF <c>rope_scaling</c>. Supported: "default" (none), "linear" (positions divided by factor) and
/// "llama3" (frequency-dependent interpolation of Llama 3.1). Others fail at load time.
/// </summary>
public sealed record RopeScaling(
    string Type,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192)
{
    public static readonly string[] Supported = ["default", "linear", "llama3"];
}
