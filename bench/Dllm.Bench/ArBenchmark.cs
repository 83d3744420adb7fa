using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// AR prefill and KV-cached decode speed of a ~20M-parameter Llama-shaped model (random weights:
/// speed does not depend on their values), in fp32 and bf16, beside the matmul ceiling.
/// </summary>
public static class ArBenchmark
{
    public static JsonObject Config20M() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["vocab_size"] = 8192,
        ["hidden_size"] = 512,
        ["intermediate_size"] = 1408,
        ["num_hidden_layers"] = 6,
        ["num_attention_heads"] = 8,
        ["num_key_value_heads"] = 4,
        ["max_position_embeddings"] = 2048,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0,
        ["tie_word_embeddings"] = true,
    };

    public static void Run(BenchArgs args)
    {
        TorchRuntime.EnsureLoaded();
        if (args.Threads > 0) set_num_threads(args.Threads);
        var config = ModelConfigReader.Read(Config20M().ToJsonString());
        int prefillTokens = args.Quick ? 128 : 512, decodeTokens = args.Quick ? 32 : 128, promptTokens = 32;
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine($"model: Llama-shaped, {config.NumLayers} layers, hidden {config.HiddenSize}, GQA {config.NumHeads}/{config.NumKvHeads}, vocab {config.VocabSize}");
        Console.WriteLine();
        Console.WriteLine("decode bound = matrix-vector weight-streaming rate / weight bytes: a batch-1 decode step reads every weight once");
        Console.WriteLine();
        Console.WriteLine($"| dtype | params | prefill {prefillTokens} tok/s | prefill GFLOP/s | % of matmul peak | decode tok/s ({promptTokens}+{decodeTokens}, KV cache) | decode bound (bandwidth) | matmul peak GFLOP/s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var model = ModelFactory.Create(config, new Placement(dtype, CPU));
            ModelInit.Randomize(model, seed: 1);
            model.eval();
            var parameters = model.parameters().Sum(p => p.numel());
            var peak = MatmulCeiling.GflopsPerSecond(dtype, repeats: args.Repeats);
            var bandwidth = MatmulCeiling.MatvecGigabytesPerSecond(dtype, args.Repeats);

            using var tokens = randint(0, config.VocabSize, new long[] { 1, prefillTokens });
            var prefillSeconds = Timing.MedianSeconds(args.Repeats, () =>
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                model.Forward(tokens, logitsForLast: 1);
            });
            // 2 flops per parameter per token for the matmuls, plus attention scores and values (causal: half).
            var flopsPerToken = 2.0 * parameters + 2.0 * config.NumLayers * prefillTokens * config.NumHeads * config.HeadDim;
            var prefillGflops = flopsPerToken * prefillTokens / prefillSeconds / 1e9;

            var prompt = Enumerable.Range(1, promptTokens).ToArray();
            var options = new DecodeOptions { MaxNewTokens = decodeTokens };
            var decodeSeconds = Timing.MedianSeconds(args.Repeats, () =>
            {
                foreach (var _ in ArDecoder.Run(model, [prompt], options)) { }
            });
            var weightBytes = parameters * (dtype == ScalarType.Float32 ? 4 : 2);
            Console.WriteLine($"| {TorchRuntime.DTypeName(dtype)} | {parameters / 1e6:F1} M | {prefillTokens / prefillSeconds:F0} | {prefillGflops:F0} | {100 * prefillGflops / peak:F0}% | {decodeTokens / decodeSeconds:F0} | {bandwidth * 1e9 / weightBytes:F0} | {peak:F0} |");
        }
    }
}
