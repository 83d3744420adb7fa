using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.IO;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Export;

/// <summary>What an export wrote, and what the reader of it should know.</summary>
public sealed record Llada2ExportReport(string Directory, string SourceArchitecture, string DType, int MaskTokenId, IReadOnlyList<string> Notes);

/// <summary>
/// Writes a dense dLLM that dllm converted from Llama, Qwen2 or Qwen3 as a LLaDA2.0 checkpoint
/// (<c>LLaDA2MoeModelLM</c>, model_type <c>llada2_moe</c>), the layout the official HF code, SGLang,
/// dInfer and dFactory read: every layer dense (first_k_dense_replace = num_hidden_layers), the three
/// attention projections fused as query_key_value in [Q heads; K heads; V heads] order, the whole head
/// rotated (partial_rotary_factor 1.0), weights in the source dtype, bit for bit.
///
/// The config states every field the official LLaDA2MoeConfig has, so no class default applies: those
/// defaults (use_bias true, partial_rotary_factor 0.5, pad_token_id 126081, ...) describe LLaDA2.0-mini,
/// not the exported model. Whatever the format cannot say exactly is refused with the reason.
/// </summary>
public static class Llada2Exporter
{
    public const string Architecture = ModelConfigReader.LLaDA2Architecture;
    public const string ModelType = "llada2_moe";
    /// <summary>The MASK id SGLang's dLLM mode assumes for LLaDA2MoeModelLM (its built-in table; not read from config).</summary>
    public const int SglangMaskTokenId = 156895;

    /// <summary>rope_scaling types that transformers' ROPE_INIT_FUNCTIONS and SGLang's get_rope both implement and dllm runs.</summary>
    private static readonly string[] RopeTypes = ["linear", "llama3"];

    public static Llada2ExportReport Export(string source, string output)
    {
        TorchRuntime.EnsureLoaded();
        var config = ModelConfigReader.ReadDirectory(source);
        Refusals(config);
        var tokenizer = TextTokenizer.Load(source);
        var mask = config.MaskTokenId ?? tokenizer.MaskId
            ?? throw new DllmException($"{source} has no MASK token (no mask_token_id in config.json, none in the tokenizer): convert it with 'dllm convert' first");
        if (mask >= config.VocabSize)
            throw new DllmException($"{source}: MASK id {mask} is outside the model's vocabulary of {config.VocabSize}");

        var dtype = SourceDType(source, config);
        using var model = ModelLoader.Load(source, new LoadOptions(DType: TorchRuntime.DTypeName(dtype)));
        var eos = config.EosTokenIds.Concat(tokenizer.EosId is { } e ? [e] : []).Distinct().ToArray();
        var pad = new int?[] { config.PadTokenId, tokenizer.PadId, eos.FirstOrDefault(-1) }
            .FirstOrDefault(id => id is { } i && i >= 0 && i < config.VocabSize) ?? 0;

        var json = ConfigJson(config, mask, pad, eos, dtype);
        var exported = ModelConfigReader.Read(json.ToJsonString(), "exported config.json");
        int? namedEos = tokenizer.EosId ?? (eos.Length > 0 ? eos[0] : null);
        var outTokenizer = tokenizer.WithSpecialTokenNames(
            eos: namedEos is { } n ? tokenizer.IdToToken(n) : null,
            pad: tokenizer.IdToToken(pad),
            mask: tokenizer.IdToToken(mask));
        using (var scope = NewDisposeScope())
            ModelSaver.Save(exported, Tensors(model), outTokenizer, output, dtype);

        var notes = new List<string>();
        if (!config.QkNorm)
            notes.Add("the source has no q/k norm, so config.json says use_qk_norm=false: dllm and SGLang honour it, but the official "
                + "modeling_llada2_moe.py (HF, dInfer, dFactory) always applies query/key RMSNorm and would compute a different model");
        if (config.QkvBias)
            notes.Add("q/k/v bias is exported as use_qkv_bias=true: the HF code and SGLang read it; dInfer's SGLang-based model builds query_key_value without bias");
        if (mask != SglangMaskTokenId)
            notes.Add($"MASK is id {mask}; SGLang's dLLM mode assumes {SglangMaskTokenId} for LLaDA2MoeModelLM, so serve this export with the HF generate or dInfer (mask_id={mask})");
        return new Llada2ExportReport(Path.GetFullPath(output), config.Architecture, TorchRuntime.DTypeName(dtype), mask, notes);
    }

    /// <summary>What the LLaDA2 format (as the official code builds it) cannot express.</summary>
    private static void Refusals(ModelConfig c)
    {
        var where = $"{c.Architecture} model";
        if (c.Family == ModelFamily.BailingMoe)
            throw new DllmException($"this is already a {c.Architecture} checkpoint in the Ling/LLaDA2 layout; export writes dense Llama, Qwen2 and Qwen3 dLLMs");
        if (!c.IsDiffusion)
            throw new DllmException($"this {where} is not a diffusion LM (config.json has no \"dllm\" section): convert it with 'dllm convert' first");
        if (c.Diffusion?.Labels == LabelPosition.Shift)
            throw new DllmException("this dLLM predicts each token at the position before it (\"dllm\": {\"labels\": \"shift\"}); LLaDA2 predicts a MASK at its own position, and no LLaDA2 consumer can decode a shifted model");
        if (c.OutputBias)
            throw new DllmException($"this {where} has a bias on the attention output projection: LLaDA2's use_bias also puts biases on query_key_value and every MLP projection in SGLang, which this model lacks");
        if (c.RopeScaling is { } r && !RopeTypes.Contains(r.Type))
            throw new DllmException($"rope_scaling type '{r.Type}' has no LLaDA2 equivalent (the LLaDA2 code paths implement {string.Join(", ", RopeTypes)})");
    }

    private static ScalarType SourceDType(string source, ModelConfig config)
    {
        using var reader = CheckpointReader.Open(source);
        var dtypes = reader.Names.Where(n => !CheckpointNames.IsIgnorable(n, config)).Select(n => reader.Entry(n).DType).Distinct().ToList();
        var floating = dtypes.Where(d => d is SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16).ToList();
        if (floating.Count != 1)
            throw new DllmException($"{source} mixes tensor dtypes ({string.Join(", ", dtypes)}); export writes one dtype and would have to round some weights");
        return floating[0].ToScalarType();
    }

    /// <summary>The source's tensors under LLaDA2 names; q/k/v weights (and biases) fused row-wise as [Q; K; V].</summary>
    private static IEnumerable<KeyValuePair<string, Tensor>> Tensors(CausalLM model)
    {
        var c = model.Config;
        var source = model.state_dict();
        var result = new List<KeyValuePair<string, Tensor>>
        {
            new("model.word_embeddings.weight", source["model.embed_tokens.weight"]),
            new("model.norm.weight", source["model.norm.weight"]),
        };
        if (!c.TieWordEmbeddings) result.Add(new("lm_head.weight", source["lm_head.weight"]));
        for (var i = 0; i < c.NumLayers; i++)
        {
            string from = $"model.layers.{i}.", to = $"model.layers.{i}.";
            result.Add(new(to + "input_layernorm.weight", source[from + "input_layernorm.weight"]));
            result.Add(new(to + "post_attention_layernorm.weight", source[from + "post_attention_layernorm.weight"]));
            result.Add(new(to + "attention.query_key_value.weight", Fused(source, from, "weight")));
            if (c.QkvBias) result.Add(new(to + "attention.query_key_value.bias", Fused(source, from, "bias")));
            result.Add(new(to + "attention.dense.weight", source[from + "self_attn.o_proj.weight"]));
            if (c.QkNorm)
            {
                result.Add(new(to + "attention.query_layernorm.weight", source[from + "self_attn.q_norm.weight"]));
                result.Add(new(to + "attention.key_layernorm.weight", source[from + "self_attn.k_norm.weight"]));
            }
            foreach (var proj in new[] { "gate_proj", "up_proj", "down_proj" })
                result.Add(new(to + $"mlp.{proj}.weight", source[from + $"mlp.{proj}.weight"]));
        }
        return result;
    }

    // [H*D, in] ; [Hkv*D, in] ; [Hkv*D, in] -> [(H + 2 Hkv) * D, in]: the row order the fused projection splits back.
    private static Tensor Fused(IDictionary<string, Tensor> source, string layer, string part) =>
        cat([source[layer + $"self_attn.q_proj.{part}"], source[layer + $"self_attn.k_proj.{part}"], source[layer + $"self_attn.v_proj.{part}"]], 0);

    /// <summary>
    /// config.json with every field of the official LLaDA2MoeConfig (and of the published LLaDA2.0 config.json),
    /// stated for this model. MoE fields describe a routed block no layer uses, valid so every reader accepts them.
    /// </summary>
    private static JsonObject ConfigJson(ModelConfig c, int mask, int pad, int[] eos, ScalarType dtype)
    {
        JsonNode? Source(string key, JsonNode? fallback) => c.Raw[key]?.DeepClone() ?? fallback;
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["auto_map"] = new JsonObject
            {
                ["AutoConfig"] = "configuration_llada2_moe.LLaDA2MoeConfig",
                ["AutoModel"] = "modeling_llada2_moe.LLaDA2MoeModel",
                ["AutoModelForCausalLM"] = "modeling_llada2_moe.LLaDA2MoeModelLM",
            },
            ["model_type"] = ModelType,
            ["vocab_size"] = c.VocabSize,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.NumLayers,
            ["num_attention_heads"] = c.NumHeads,
            ["num_key_value_heads"] = c.NumKvHeads,
            ["head_dim"] = c.HeadDim,
            ["hidden_act"] = "silu",
            ["use_qkv_bias"] = c.QkvBias,
            ["use_qk_norm"] = c.QkNorm,
            ["use_bias"] = false,
            ["use_rmsnorm"] = true,
            ["rms_norm_eps"] = c.RmsNormEps,
            ["norm_head"] = false,
            ["norm_softmax"] = false,
            ["tie_word_embeddings"] = c.TieWordEmbeddings,
            ["embedding_dropout"] = 0.0,
            ["attention_dropout"] = 0.0,
            ["output_dropout"] = 0.0,
            ["initializer_range"] = Source("initializer_range", ModelInit.DefaultStd),
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["rope_theta"] = c.RopeTheta,
            ["rope_scaling"] = c.RopeScaling is null ? null : Source("rope_scaling", null),
            // 1.0 for these families; a partial-rotary source keeps its fraction (int(head_dim * factor) == rotary_dim).
            ["partial_rotary_factor"] = (double)c.RotaryDim / c.HeadDim,
            ["rotary_dim"] = c.RotaryDim,
            ["use_cache"] = false,
            ["use_sliding_window"] = false,
            ["sliding_window"] = Source("sliding_window", 4096) ?? 4096,
            ["max_window_layers"] = c.NumLayers,
            ["using_split_qkv_in_self_attention"] = false,
            ["num_experts"] = BailingDefaults.NumExperts,
            ["num_experts_per_tok"] = BailingDefaults.NumExpertsPerToken,
            ["num_shared_experts"] = BailingDefaults.NumSharedExperts,
            ["moe_intermediate_size"] = c.IntermediateSize,
            ["first_k_dense_replace"] = c.NumLayers,
            ["n_group"] = BailingDefaults.NumGroups,
            ["topk_group"] = BailingDefaults.TopKGroups,
            ["routed_scaling_factor"] = BailingDefaults.RoutedScalingFactor,
            ["norm_topk_prob"] = true,
            ["score_function"] = "sigmoid",
            ["moe_router_enable_expert_bias"] = true,
            ["router_dtype"] = "fp32",
            ["output_router_logits"] = false,
            ["pad_token_id"] = pad,
            ["mask_token_id"] = mask,
            ["torch_dtype"] = TorchRuntime.DTypeName(dtype),
        };
        if (c.BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (eos.Length > 0) o["eos_token_id"] = eos.Length == 1 ? eos[0] : new JsonArray(eos.Select(e => (JsonNode)e).ToArray());
        if (c.Raw["dllm"] is JsonObject dllm) o["dllm"] = dllm.DeepClone();
        return o;
    }
}
