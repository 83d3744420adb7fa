using System.Text.Json.Nodes;
using Dllm.Attention;
using Dllm.Config;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// Where block decoding's speed comes from: the wall time of one forward of B positions on a KV cache (a block
/// decoding step) against one forward of a single position (a KV-cached AR step), for random-weight Llama-shaped
/// models of about 1 M, 10 M and 50 M parameters in fp32 and bf16. Each step is what a decoder pays: embed,
/// forward over the cache (a 64-token prompt), logits, argmax and the copy to the host. A decoder that commits
/// k tokens per block forward is faster than AR by about k / (block cost / AR cost).
/// </summary>
public static class BlockCostBenchmark
{
    /// <summary>The ~1 M and ~10 M random-weight models the serving-side benchmarks (prefill, ragged) decode with.</summary>
    internal static (string Name, JsonObject Config)[] SmallModels =>
    [
        ("~1 M", Config(128, 4, 4, 1024)),
        ("~10 M", Config(320, 8, 8, 4096)),
    ];

    private static JsonObject Config(int hidden, int layers, int heads, int vocab) => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["vocab_size"] = vocab,
        ["hidden_size"] = hidden,
        ["intermediate_size"] = (int)Math.Ceiling(hidden * 8.0 / 3 / 32) * 32,
        ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads,
        ["num_key_value_heads"] = heads / 2,
        ["max_position_embeddings"] = 512,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0,
        ["tie_word_embeddings"] = true,
    };

    public static void Run(BenchArgs args)
    {
        TorchRuntime.EnsureLoaded();
        if (args.Threads > 0) set_num_threads(args.Threads);
        (string Name, JsonObject Config)[] models =
        [
            ("~1 M", Config(128, 4, 4, 1024)),
            ("~10 M", Config(320, 8, 8, 4096)),
            ("~50 M", Config(640, 10, 10, 8192)),
        ];
        int[] blocks = [8, 16, 32];
        const int prompt = 64;
        var repeats = Math.Max(args.Repeats, 20);
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine($"one forward on a {prompt}-token KV cache, median of {repeats} after warm-up; ratio = block forward / AR step");
        Console.WriteLine();
        Console.WriteLine("| model | params | dtype | AR step ms | " + string.Join(" | ", blocks.Select(b => $"B={b} ms (ratio)")) + " |");
        Console.WriteLine("|---|---|---|---|" + string.Concat(blocks.Select(_ => "---|")));
        foreach (var (name, json) in models)
        {
            var config = ModelConfigReader.Read(json.ToJsonString());
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var model = ModelFactory.Create(config, new Placement(dtype, CPU));
                ModelInit.Randomize(model, seed: 1);
                model.eval();
                var parameters = model.parameters().Sum(p => p.numel());
                using var cache = new KvCache(config.NumLayers, prompt + 64);
                using (no_grad())
                using (var scope = NewDisposeScope())
                    model.Forward(randint(0, config.VocabSize, new long[] { 1, prompt }), cache: cache, logitsForLast: 1);
                double Step(int width) => Timing.MedianSeconds(repeats, () =>
                {
                    using var scope = NewDisposeScope();
                    using var noGrad = no_grad();
                    var tokens = randint(0, config.VocabSize, new long[] { 1, width });
                    var positions = arange(prompt, prompt + width).unsqueeze(0);
                    var mask = ones(width, prompt + width, dtype: ScalarType.Bool);   // a block sees the cache and itself
                    var logits = model.Forward(tokens, positions, mask, cache, commit: 0);
                    logits.softmax(-1).max(-1).indexes.cpu();
                }, warmup: 5);
                var ar = Step(1);
                var cells = blocks.Select(b => { var t = Step(b); return $"{t * 1e3:F2} ({t / ar:F2}x)"; });
                Console.WriteLine($"| {name} | {parameters / 1e6:F1} M | {TorchRuntime.DTypeName(dtype)} | {ar * 1e3:F2} | {string.Join(" | ", cells)} |");
            }
        }
    }
}
