namespace Dllm.Config;

/// <summary>The transformer families we can run. Each maps to one model class and one tensor-name table.</summary>
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
