using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Config;

/// <summary>Reads and validates an HF <c>config.json</c> into a <see cref="ModelConfig"/>.</summary>
public static class ModelConfigReader
{
    public const string LlamaArchitecture = "LlamaForCausalLM";
    public const string Qwen2Architecture = "Qwen2ForCausalLM";
    public const string Qwen3Architecture = "Qwen3ForCausalLM";
    public const string LingArchitecture = "BailingMoeV2ForCausalLM";
    public const string LLaDA2Architecture = "LLaDA2MoeModelLM";

    private static readonly Dictionary<string, ModelFamily> Architectures = new(StringComparer.Ordinal)
    {
        [LlamaArchitecture] = ModelFamily.Llama,
        [Qwen2Architecture] = ModelFamily.Qwen2,
        [Qwen3Architecture] = ModelFamily.Qwen3,
        [LingArchitecture] = ModelFamily.BailingMoe,
        [LLaDA2Architecture] = ModelFamily.BailingMoe,
    };

    public static ModelConfig ReadDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DllmException($"model folder not found: {directory}");
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path))
            throw new DllmException($"{directory} holds no config.json: is it a Hugging Face model folder?");
        return Read(File.ReadAllText(path), path);
    }

    public static ModelConfig Read(string json, string source = "config.json")
    {
        var config = new Fields(IO.StrictJson.ParseObject(json, source), source).Build();
        ConfigBounds.Check(config, source);
        return config;
    }

    /// <summary>Typed access to the raw JSON with errors that name the file and the field.</summary>
    private sealed class Fields(JsonObject raw, string source)
    {
        public ModelConfig Build()
        {
            var architecture = Architecture();
            var family = Architectures[architecture];
            // Positive before anything divides by them.
            var hidden = PositiveInt("hidden_size");
            var heads = PositiveInt("num_attention_heads");
            var kvHeads = OptPositiveInt("num_key_value_heads") ?? heads;
            var headDim = OptPositiveInt("head_dim") ?? (hidden % heads == 0 ? hidden / heads : Fail<int>($"hidden_size {hidden} is not a multiple of num_attention_heads {heads} and no head_dim is given"));
            if (heads % kvHeads != 0)
                Fail<int>($"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
            var act = OptString("hidden_act") ?? "silu";
            if (act != "silu")
                Fail<int>($"hidden_act '{act}' is not supported (only silu / SwiGLU)");

            var isBailing = family == ModelFamily.BailingMoe;
            // Bailing (Ling 2.0 / LLaDA2): the official config class always sets partial_rotary_factor (default 0.5)
            // and the modeling code rotates head_dim * factor dims, never reading rotary_dim. Other families:
            // partial_rotary_factor, then rotary_dim, then the whole head.
            var rotaryDim = isBailing ? (int)(headDim * (OptDouble("partial_rotary_factor") ?? BailingDefaults.PartialRotaryFactor))
                : OptDouble("partial_rotary_factor") is { } factor ? (int)(headDim * factor)
                : OptInt("rotary_dim") ?? headDim;
            if (rotaryDim <= 0 || rotaryDim > headDim || rotaryDim % 2 != 0)
                Fail<int>($"rotary dimension {rotaryDim} must be even and within head_dim {headDim}");

            var attentionBias = OptBool("attention_bias") ?? false;
            var config = new ModelConfig
            {
                Architecture = architecture,
                ModelType = OptString("model_type") ?? "",
                Family = family,
                VocabSize = Int("vocab_size"),
                HiddenSize = hidden,
                IntermediateSize = Int("intermediate_size"),
                NumLayers = Int("num_hidden_layers"),
                NumHeads = heads,
                NumKvHeads = kvHeads,
                HeadDim = headDim,
                MaxPositionEmbeddings = OptInt("max_position_embeddings") ?? (isBailing ? BailingDefaults.MaxPositionEmbeddings : 2048),
                RmsNormEps = OptDouble("rms_norm_eps") ?? (isBailing ? BailingDefaults.RmsNormEps : 1e-6),
                RopeTheta = OptDouble("rope_theta") ?? 10000.0,
                RopeScaling = ReadRopeScaling(),
                RotaryDim = rotaryDim,
                TieWordEmbeddings = OptBool("tie_word_embeddings") ?? false, // the default of LlamaConfig, Qwen2/3Config and Bailing
                QkvBias = family switch
                {
                    ModelFamily.Qwen2 => true,
                    ModelFamily.BailingMoe => OptBool("use_qkv_bias") ?? false,
                    _ => attentionBias,
                },
                OutputBias = family switch
                {
                    ModelFamily.Qwen2 => false,
                    ModelFamily.BailingMoe => OptBool("use_bias") ?? BailingDefaults.UseBias,
                    _ => attentionBias,
                },
                QkNorm = family switch
                {
                    ModelFamily.Qwen3 => true,
                    // The official modeling code applies q/k RMSNorm whatever use_qk_norm says; we (like SGLang) honour
                    // an explicit false, which is how dense models without q/k norm are exported (docs/formats.md).
                    ModelFamily.BailingMoe => OptBool("use_qk_norm") ?? true,
                    _ => false,
                },
                Moe = isBailing ? ReadMoe() : null,
                BosTokenId = OptInt("bos_token_id"),
                EosTokenIds = IntOrList("eos_token_id"),
                PadTokenId = OptInt("pad_token_id"),
                MaskTokenId = OptInt("mask_token_id"),
                Diffusion = ReadDiffusion(),
                Raw = raw,
            };
            foreach (var (name, value) in new[] { ("vocab_size", config.VocabSize), ("hidden_size", hidden), ("intermediate_size", config.IntermediateSize), ("num_hidden_layers", config.NumLayers), ("num_attention_heads", heads), ("num_key_value_heads", kvHeads) })
                if (value <= 0) Fail<int>($"{name} must be positive, got {value}");
            if (config.MaskTokenId is { } mask && (mask < 0 || mask >= config.VocabSize))
                Fail<int>($"mask_token_id {mask} is outside the vocabulary (vocab_size {config.VocabSize})");
            if (family == ModelFamily.Qwen2 && (OptBool("use_sliding_window") ?? false))
                Fail<int>("use_sliding_window=true is not supported");
            return config;
        }

        private string Architecture()
        {
            var names = raw["architectures"] is JsonArray array ? array.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : "").ToArray() : [];
            foreach (var name in names)
                if (Architectures.ContainsKey(name)) return name;
            var found = names.Length == 0 ? "no 'architectures' field" : $"architecture {string.Join(", ", names)}";
            return Fail<string>($"{found} is not supported; supported architectures: {string.Join(", ", Architectures.Keys)}");
        }

        private RopeScaling? ReadRopeScaling()
        {
            if (raw["rope_scaling"] is not JsonObject o) return null;
            var type = (o["rope_type"] ?? o["type"]) switch
            {
                null => "default",
                JsonValue v when v.TryGetValue<string>(out var name) => name,
                var other => Fail<string>($"rope_scaling.rope_type must be a string, got {other.ToJsonString()}"),
            };
            if (!RopeScaling.Supported.Contains(type))
                return Fail<RopeScaling>($"rope_scaling type '{type}' is not supported (supported: {string.Join(", ", RopeScaling.Supported)})");
            double D(string key, double fallback) => o[key] switch
            {
                null => fallback,
                JsonValue v when v.TryGetValue<double>(out var d) => d,
                var other => Fail<double>($"rope_scaling.{key} must be a number, got {other.ToJsonString()}"),
            };
            var scaling = new RopeScaling(type,
                D("factor", 1.0), D("low_freq_factor", 1.0), D("high_freq_factor", 4.0),
                (int)D("original_max_position_embeddings", 8192));
            if (scaling.Factor <= 0) Fail<int>($"rope_scaling.factor must be positive, got {scaling.Factor}");
            return type == "default" ? null : scaling;
        }

        private MoeSettings ReadMoe()
        {
            var experts = OptPositiveInt("num_experts") ?? BailingDefaults.NumExperts;
            var perToken = OptPositiveInt("num_experts_per_tok") ?? BailingDefaults.NumExpertsPerToken;
            var groups = OptPositiveInt("n_group") ?? BailingDefaults.NumGroups;
            var topkGroups = OptPositiveInt("topk_group") ?? BailingDefaults.TopKGroups;
            var moeWidth = PositiveInt("moe_intermediate_size");
            // The official block builds shared_experts whenever num_shared_experts is not null, with width
            // moe_intermediate_size * num_shared_experts: 0 (the default) gives a zero-width expert that adds nothing
            // but whose (empty) tensors a saved checkpoint holds. An explicit null means no such module.
            int? shared = raw.ContainsKey("num_shared_experts") && raw["num_shared_experts"] is null ? null
                : OptInt("num_shared_experts") ?? BailingDefaults.NumSharedExperts;
            var settings = new MoeSettings(
                NumExperts: experts,
                NumExpertsPerToken: perToken,
                NumSharedExperts: shared,
                MoeIntermediateSize: moeWidth,
                // sglang lets moe_shared_expert_intermediate_size replace the per-expert width of the shared expert.
                SharedExpertIntermediateSize: (OptInt("moe_shared_expert_intermediate_size") ?? moeWidth) * (shared ?? 0),
                NumGroups: groups,
                TopKGroups: topkGroups,
                RoutedScalingFactor: OptDouble("routed_scaling_factor") ?? BailingDefaults.RoutedScalingFactor,
                // The official gate renormalises the top-k weights whenever k > 1 and never reads norm_topk_prob.
                NormTopKProb: true,
                UseExpertBias: OptBool("moe_router_enable_expert_bias") ?? true,
                FirstKDenseReplace: OptInt("first_k_dense_replace") ?? 0,
                ScoreFunction: OptString("score_function") ?? "sigmoid",
                NumNextnPredictLayers: OptInt("num_nextn_predict_layers") ?? 0);
            if (experts <= 0 || perToken <= 0 || groups <= 0 || topkGroups <= 0 || moeWidth <= 0 || shared < 0)
                Fail<int>("num_experts, num_experts_per_tok, n_group, topk_group and moe_intermediate_size must be positive, num_shared_experts not negative");
            if (experts % groups != 0) Fail<int>($"num_experts {experts} is not a multiple of n_group {groups}");
            if (topkGroups > groups) Fail<int>($"topk_group {topkGroups} exceeds n_group {groups}");
            if (perToken > topkGroups * (experts / groups)) Fail<int>($"num_experts_per_tok {perToken} exceeds the experts in the {topkGroups} kept groups");
            if (settings.ScoreFunction != "sigmoid") Fail<int>($"score_function '{settings.ScoreFunction}' is not supported (the published Ling/LLaDA2 code routes with sigmoid only)");
            return settings;
        }

        private DiffusionSettings? ReadDiffusion()
        {
            if (raw["dllm"] is not JsonObject o) return null;
            var block = o["block_size"] switch
            {
                null => Fail<int>("dllm.block_size is missing"),
                JsonValue v when v.TryGetValue<int>(out var b) => b,
                var other => Fail<int>($"dllm.block_size must be an integer, got {other.ToJsonString()}"),
            };
            if (block <= 0) Fail<int>($"dllm.block_size must be positive, got {block}");
            var labels = o["labels"] switch
            {
                null => LabelPosition.Same,
                JsonValue l when l.TryGetValue<string>(out var name) && name is "same" or "shift" => LabelPositions.Parse(name),
                var other => Fail<LabelPosition>($"dllm.labels must be \"same\" or \"shift\", got {other.ToJsonString()}"),
            };
            return new DiffusionSettings(block, labels);
        }

        private T Fail<T>(string message) => throw new DllmException($"{source}: {message}");

        private int Int(string key) => OptInt(key) ?? Fail<int>($"required field '{key}' is missing");

        private int PositiveInt(string key) => OptPositiveInt(key) ?? Fail<int>($"required field '{key}' is missing");

        private int? OptPositiveInt(string key) => OptInt(key) is { } value && value <= 0 ? Fail<int>($"{key} must be positive, got {value}") : OptInt(key);

        private int? OptInt(string key) => raw[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<int>(out var i) => i,
            JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
            var other => Fail<int?>($"field '{key}' must be an integer, got {other.ToJsonString()}"),
        };

        private double? OptDouble(string key) => raw[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<double>(out var d) => d,
            var other => Fail<double?>($"field '{key}' must be a number, got {other.ToJsonString()}"),
        };

        private bool? OptBool(string key) => raw[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            var other => Fail<bool?>($"field '{key}' must be true or false, got {other.ToJsonString()}"),
        };

        private string? OptString(string key) => raw[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            var other => Fail<string?>($"field '{key}' must be a string, got {other.ToJsonString()}"),
        };

        private IReadOnlyList<int> IntOrList(string key) => raw[key] switch
        {
            null => [],
            JsonArray a => a.Select(n => n is JsonValue v && v.TryGetValue<int>(out var i) ? i : Fail<int>($"field '{key}' must hold integers")).ToArray(),
            _ => OptInt(key) is { } single ? [single] : [],
        };
    }
}
