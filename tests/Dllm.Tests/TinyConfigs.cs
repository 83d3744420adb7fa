using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Models;
using Dllm.Models.Layers;

namespace Dllm.Tests;

/// <summary>Tiny configs of every supported architecture, written as real HF config.json text.</summary>
public static class TinyConfigs
{
    public static string[] Architectures => ["llama", "qwen2", "qwen3", "ling", "llada2"];

    public static JsonObject Json(string arch) => arch switch
    {
        "llama" => Dense("LlamaForCausalLM", "llama", new JsonObject
        {
            ["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 64 },
            ["tie_word_embeddings"] = true,
        }),
        "qwen2" => Dense("Qwen2ForCausalLM", "qwen2", new JsonObject { ["tie_word_embeddings"] = false }),
        "qwen3" => Dense("Qwen3ForCausalLM", "qwen3", new JsonObject { ["head_dim"] = 12, ["attention_bias"] = false, ["tie_word_embeddings"] = true }),
        "ling" => Moe("BailingMoeV2ForCausalLM", "bailing_moe_v2"),
        "llada2" => Moe("LLaDA2MoeModelLM", "llada2_moe"),
        _ => throw new ArgumentException(arch),
    };

    public static ModelConfig Config(string arch) => ModelConfigReader.Read(Json(arch).ToJsonString(), arch);

    public static CausalLM Model(string arch, long seed = 1) => Model(Config(arch), seed);

    /// <summary>A tiny dLLM whose config records shifted labels (and the given block size).</summary>
    public static CausalLM Shifted(string arch, long seed = 1, int blockSize = 4) =>
        Model(Config(arch) with { Diffusion = new DiffusionSettings(blockSize, LabelPosition.Shift) }, seed);

    public static CausalLM Model(ModelConfig config, long seed)
    {
        var model = ModelFactory.Create(config, Placement.Cpu32);
        ModelInit.Randomize(model, seed, std: 0.2);
        model.eval();
        return model;
    }

    private static JsonObject Dense(string architecture, string modelType, JsonObject extra)
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(architecture),
            ["model_type"] = modelType,
            ["vocab_size"] = 272,
            ["hidden_size"] = 32,
            ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2,
            ["max_position_embeddings"] = 128,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["hidden_act"] = "silu",
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
        };
        foreach (var (k, v) in extra) o[k] = v?.DeepClone();
        return o;
    }

    private static JsonObject Moe(string architecture, string modelType) => new()
    {
        ["architectures"] = new JsonArray(architecture),
        ["model_type"] = modelType,
        ["vocab_size"] = 272,
        ["hidden_size"] = 32,
        ["intermediate_size"] = 48,
        ["moe_intermediate_size"] = 16,
        ["num_hidden_layers"] = 3,
        ["num_attention_heads"] = 4,
        ["num_key_value_heads"] = 2,
        ["head_dim"] = 8,
        ["num_experts"] = 8,
        ["num_experts_per_tok"] = 2,
        ["num_shared_experts"] = 1,
        ["n_group"] = 4,
        ["topk_group"] = 2,
        ["routed_scaling_factor"] = 2.5,
        ["score_function"] = "sigmoid",
        ["norm_topk_prob"] = true,
        ["moe_router_enable_expert_bias"] = true,
        ["router_dtype"] = "fp32",
        ["first_k_dense_replace"] = 1,
        ["partial_rotary_factor"] = 0.5,
        ["rope_theta"] = 600000.0,
        ["use_qk_norm"] = true,
        ["use_qkv_bias"] = false,
        ["use_bias"] = false,
        ["tie_word_embeddings"] = false,
        ["rms_norm_eps"] = 1e-6,
        ["max_position_embeddings"] = 128,
        ["pad_token_id"] = 3,
        ["eos_token_id"] = 2,
        ["hidden_act"] = "silu",
    };
}
