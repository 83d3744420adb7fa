using System.Text.Json.Nodes;

namespace Dllm.Training;

/// <summary>HF config.json text for new models trained from scratch.</summary>
public static class ModelPresets
{
    /// <summary>A Llama config; vocab_size is filled from the tokenizer by the pre-training job.</summary>
    public static JsonObject Llama(int hidden, int layers, int heads, int kvHeads, int ffn, int context)
    {
        if (hidden % heads != 0) throw new DllmException($"hidden size {hidden} is not a multiple of {heads} heads");
        if (heads % kvHeads != 0) throw new DllmException($"{heads} heads are not a multiple of {kvHeads} key/value heads");
        if (ffn <= 0) ffn = (int)Math.Ceiling(hidden * 8.0 / 3 / 32) * 32;
        return new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = hidden,
            ["intermediate_size"] = ffn,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads,
            ["max_position_embeddings"] = context,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = true,
            ["attention_bias"] = false,
        };
    }
}
