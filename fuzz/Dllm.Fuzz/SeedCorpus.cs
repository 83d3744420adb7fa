using System.Text;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Demo;
using Dllm.Import;
using Dllm.IO;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Tokenization;
using Parquet;
using Parquet.Schema;
using static TorchSharp.torch;

namespace Dllm.Fuzz;

/// <summary>
/// The seed inputs of every target, written by dllm's own writers (safetensors, configs, tokenizers, Parquet) and cut
/// from the real files in ../shared/data (TinyStories, GSM8K, the LLaMA-Factory chat and preference demos, the
/// stories260K llama2.c tokenizer) when that folder is there. Seeds stay small: AFL++ mutates short inputs best.
/// </summary>
public static class SeedCorpus
{
    public static void Write(string output, string? sharedData)
    {
        Runtime.TorchRuntime.EnsureLoaded();
        var shared = sharedData ?? FindSharedData();
        void Put(string target, string name, byte[] bytes)
        {
            var dir = Path.Combine(output, target);
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
        }
        void PutText(string target, string name, string text) => Put(target, name, Encoding.UTF8.GetBytes(text));
        string? Shared(string relative) => shared is not null && File.Exists(Path.Combine(shared, relative)) ? Path.Combine(shared, relative) : null;

        var work = Path.Combine(Path.GetTempPath(), $"dllm-seeds-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            // Models: tiny dense and MoE checkpoints through ModelSaver, one of them sharded.
            var tokenizer = TextTokenizer.Load(Path.Combine(AppContext.BaseDirectory, "fuzz-fixtures"));
            foreach (var (name, json) in Configs(tokenizer.VocabSize))
            {
                PutText("config", $"{name}.json", json.ToJsonString());
                var config = ModelConfigReader.Read(json.ToJsonString(), name);
                using var model = ModelFactory.Create(config, Placement.Cpu32);
                ModelInit.Randomize(model, seed: 1);
                var dir = Path.Combine(work, name);
                ModelSaver.Save(model, tokenizer, dir, maxShardBytes: name == "llama" ? 20_000 : 5_000_000_000);
                foreach (var file in Directory.GetFiles(dir, "*.safetensors")) Put("safetensors", $"{name}-{Path.GetFileName(file)}", File.ReadAllBytes(file));
                if (File.Exists(Path.Combine(dir, CheckpointLayout.IndexFile))) Put("shard-index", $"{name}.index.json", File.ReadAllBytes(Path.Combine(dir, CheckpointLayout.IndexFile)));
            }
            Put("safetensors", "dtypes.safetensors", MixedDtypes(work));
            PutText("shard-index", "two-shards.index.json", CheckpointLayout.SerializeIndex(64, [new("a.weight", "model-00001-of-00002.safetensors"), new("b.weight", "model-00002-of-00002.safetensors")]));

            // Tokenizers: the imported llama2.c one (SentencePiece-style byte fallback) and a byte-level BPE trained here.
            PutText("tokenizer", "sentencepiece.json", Seeds.TokenizerJson);
            PutText("tokenizer-config", "llama.json", Seeds.TokenizerConfigJson);
            var stories = Shared("tinystories/sample.txt") is { } sample ? File.ReadLines(sample).Take(400).ToList() : SyntheticCorpus.Stories(200, 1).ToList();
            BpeTrainer.Train(stories.Where(s => s.Length > 0 && s != "<|endoftext|>"), 300, Path.Combine(work, "bpe"), ["<|im_start|>", "<|im_end|>"]);
            Put("tokenizer", "byte-level.json", File.ReadAllBytes(Path.Combine(work, "bpe", "tokenizer.json")));
            Put("tokenizer-config", "byte-level.json", File.ReadAllBytes(Path.Combine(work, "bpe", "tokenizer_config.json")));
            PutText("tokenizer-config", "chatml.json", """{"add_bos_token": false, "bos_token": null, "eos_token": "</s>", "pad_token": "<unk>", "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", "model_max_length": 512}""");

            // llama2.c: a tiny model in the legacy layout, and the real stories260K tokenizer.
            Put("llama2c-model", "tiny.bin", TinyLlama2c());
            if (Shared("stories260K/tok512.bin") is { } tok) Put("llama2c-tokenizer", "tok512.bin", File.ReadAllBytes(tok));

            // Corpora: both text layouts, JSON Lines and Parquet.
            var docs = stories.Where(s => s.Length > 0 && s != "<|endoftext|>").Take(12).ToList();
            PutText("text-corpus", "separated.txt", string.Join("\n<|endoftext|>\n", docs.Take(4)) + "\n");
            PutText("text-corpus", "lines.txt", string.Join("\n", docs.Take(6)) + "\n\n");
            PutText("jsonl-corpus", "text.jsonl", string.Join("\n", docs.Take(6).Select(d => new JsonObject { ["text"] = d }.ToJsonString())) + "\n");
            Put("parquet-corpus", "text.parquet", Parquet(docs.Take(5).ToArray()));

            // Fine-tuning and task data in every accepted layout.
            var gsm = Shared("gsm8k/train_500.jsonl") is { } g ? File.ReadLines(g).Take(2).ToList() : [];
            PutText("task-data", "gsm8k.jsonl", string.Join("\n", gsm) + "\n");
            PutText("task-data", "prompt-answer.jsonl", "{\"prompt\": \"Compute: 12 + 30 =\", \"answer\": \" 42\", \"kind\": \"arithmetic\"}\n");
            PutText("sft-data", "gsm8k.jsonl", string.Join("\n", gsm) + "\n");
            PutText("sft-data", "messages.jsonl", """{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}""" + "\n");
            PutText("sft-data", "parts.jsonl", """{"messages": [{"role": "user", "content": [{"type": "text", "value": "Hi"}]}, {"from": "gpt", "value": "Yo"}]}""" + "\n");
            if (Shared("chat/identity.json") is { } identity) PutText("sft-data", "alpaca.json", FirstRecords(identity, 2));
            if (Shared("chat/v1_dpo_demo.jsonl") is { } v1) PutText("preference-data", "messages.jsonl", Truncate(File.ReadLines(v1).First(), 4000) + "\n");
            if (Shared("chat/dpo_en_demo.json") is { } sharegpt) PutText("preference-data", "sharegpt.json", FirstRecords(sharegpt, 1));
            PutText("preference-data", "strings.jsonl", """{"prompt": "2+2=", "chosen": "4", "rejected": "5"}""" + "\n");

            PutText("schedule", "wsd.json", """{"phases": [{"steps": 10, "block_size": 1, "stage": "warmup"}, {"steps": 20, "block_size": 128, "stage": "stable"}, {"steps": 5, "block_size": 32}]}""");
            PutText("http-request", "chat.json", """{"model": "default", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "seed": 3, "stop": ["\n\n"], "stream": true, "stream_options": {"include_usage": true}, "block_size": 32, "threshold": 0.9, "max_steps_per_block": 8}""");
            PutText("http-request", "parts.json", """{"messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, {"role": "user", "content": null}], "max_completion_tokens": 4, "response_format": {"type": "text"}, "n": 1}""");
            PutText("http-request", "completion.json", """{"model": "s260", "prompt": ["Once upon a time"], "max_tokens": 1e3, "temperature": 0, "best_of": 1, "stop": "."}""");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string? FindSharedData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
            candidate = Path.Combine(dir.FullName, "..", "shared", "data");
            if (Directory.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        return null;
    }

    private static IEnumerable<(string Name, JsonObject Json)> Configs(int vocab)
    {
        JsonObject Dense(string architecture, string type) => new()
        {
            ["architectures"] = new JsonArray(architecture), ["model_type"] = type, ["vocab_size"] = vocab, ["hidden_size"] = 8,
            ["intermediate_size"] = 12, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1,
            ["max_position_embeddings"] = 64, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["hidden_act"] = "silu",
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["tie_word_embeddings"] = true,
        };
        var llama = Dense("LlamaForCausalLM", "llama");
        llama["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 32 };
        yield return ("llama", llama);
        yield return ("qwen2", Dense("Qwen2ForCausalLM", "qwen2"));
        var qwen3 = Dense("Qwen3ForCausalLM", "qwen3");
        qwen3["head_dim"] = 4;
        qwen3["dllm"] = new JsonObject { ["block_size"] = 8 };
        qwen3["mask_token_id"] = vocab - 1;
        yield return ("qwen3", qwen3);
        yield return ("llada2", new JsonObject
        {
            ["architectures"] = new JsonArray("LLaDA2MoeModelLM"), ["model_type"] = "llada2_moe", ["vocab_size"] = vocab, ["hidden_size"] = 8,
            ["intermediate_size"] = 12, ["moe_intermediate_size"] = 4, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2,
            ["num_key_value_heads"] = 1, ["head_dim"] = 4, ["num_experts"] = 4, ["num_experts_per_tok"] = 2, ["num_shared_experts"] = 1,
            ["n_group"] = 2, ["topk_group"] = 1, ["routed_scaling_factor"] = 2.5, ["score_function"] = "sigmoid", ["norm_topk_prob"] = true,
            ["moe_router_enable_expert_bias"] = true, ["first_k_dense_replace"] = 1, ["partial_rotary_factor"] = 0.5, ["rope_theta"] = 600000.0,
            ["use_qk_norm"] = true, ["use_qkv_bias"] = false, ["use_bias"] = false, ["tie_word_embeddings"] = false, ["rms_norm_eps"] = 1e-6,
            ["max_position_embeddings"] = 64, ["pad_token_id"] = 0, ["eos_token_id"] = 2, ["hidden_act"] = "silu",
        });
    }

    /// <summary>Every dtype the format allows, an empty tensor, a scalar and metadata, through SafetensorsWriter.</summary>
    private static byte[] MixedDtypes(string work)
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(work, "dtypes.safetensors");
        SafetensorsWriter.Write(path,
        [
            new("f32", arange(6, dtype: ScalarType.Float32).reshape(2, 3)),
            new("bf16", ones(3, dtype: ScalarType.BFloat16)),
            new("f16", ones(2, 2, dtype: ScalarType.Float16)),
            new("f64", tensor(new[] { 1.5 })),
            new("i64", tensor(new long[] { -1, 2 })),
            new("i32", tensor(new[] { 7 })),
            new("u8", tensor(new byte[] { 1, 2, 3 })),
            new("bool", tensor(new[] { true, false })),
            new("empty", zeros(0, 4)),
            new("scalar", tensor(3.0f)),
        ], new Dictionary<string, string> { ["note"] = "seed" });
        return File.ReadAllBytes(path);
    }

    /// <summary>The legacy llama2.c layout: 7 int32 (dim 8, hidden 12, 1 layer, 2 heads, 2 kv heads, vocab 16, seq 8), then the fp32 arrays.</summary>
    private static byte[] TinyLlama2c()
    {
        int dim = 8, hidden = 12, layers = 1, heads = 2, kv = 2, vocab = 16, seq = 8, head = dim / heads;
        var floats = vocab * dim + layers * dim + layers * dim * dim * 2 + 2 * layers * kv * head * dim + layers * dim + 3 * layers * hidden * dim + dim + seq * head;
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        foreach (var v in new[] { dim, hidden, layers, heads, kv, vocab, seq }) writer.Write(v);
        var rng = new Random(1);
        for (var i = 0; i < floats; i++) writer.Write((float)(rng.NextDouble() - 0.5));
        writer.Flush();
        return stream.ToArray();
    }

    private static byte[] Parquet(string[] texts)
    {
        using var stream = new MemoryStream();
        var field = new DataField<string>("text");
        Task.Run(async () =>
        {
            await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(field), stream);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(field, texts);
        }).GetAwaiter().GetResult();
        return stream.ToArray();
    }

    private static string FirstRecords(string jsonArrayFile, int count)
    {
        var array = JsonNode.Parse(File.ReadAllText(jsonArrayFile))!.AsArray();
        return new JsonArray(array.Take(count).Select(n => n!.DeepClone()).ToArray()).ToJsonString();
    }

    private static string Truncate(string line, int max) => line.Length <= max ? line : line[..max];
}
