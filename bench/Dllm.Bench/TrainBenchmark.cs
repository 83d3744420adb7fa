using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using Dllm.Training;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// Training step time of the 20M-parameter Llama-shaped model at one sequence length: an AR step, a
/// block-diffusion step (B = 32, input [x_t ; x] of 2L tokens) and an MDLM step (B = L, x_t alone),
/// in fp32 and bf16 compute, with tokens/s and model-FLOPs utilisation against the matmul peak
/// (6 x parameters x training tokens per step, the usual forward+backward estimate).
/// </summary>
public static class TrainBenchmark
{
    public static void Run(BenchArgs args)
    {
        TorchRuntime.EnsureLoaded();
        if (args.Threads > 0) set_num_threads(args.Threads);
        var config = ModelConfigReader.Read(ArBenchmark.Config20M().ToJsonString());
        int batch = 4, length = args.Quick ? 128 : 256;
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine($"model: Llama-shaped, {config.NumLayers} layers, hidden {config.HiddenSize}; batch {batch} x L {length}; AdamW step included");
        Console.WriteLine();
        Console.WriteLine("| dtype | objective | step ms (median) | training tokens/s | model TFLOP/s | MFU vs matmul peak | step time vs AR |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var model = ModelFactory.Create(config, new Placement(dtype, CPU));
            ModelInit.Randomize(model, seed: 1);
            model.train();
            var parameters = model.parameters().Sum(p => p.numel());
            var peak = MatmulCeiling.GflopsPerSecond(dtype, repeats: args.Repeats);
            using var optimizer = new AdamW(model.named_parameters().Select(p => (p.name, p.parameter)), new AdamWOptions());
            using var tokens = randint(0, config.VocabSize - 1, new long[] { batch, length });
            var maskId = config.VocabSize - 1;
            double? arMs = null;
            foreach (var (name, objective) in new (string, ITrainingObjective)[]
            {
                ("AR (next token)", new ArObjective()),
                ("block diffusion B=32", new BlockDiffusionObjective(BlockSchedule.Constant(1, 32), maskId, new NoiseOptions())),
                ($"MDLM (B=L={length})", new BlockDiffusionObjective(BlockSchedule.Constant(1, length), maskId, new NoiseOptions())),
                ("complementary pair B=32, rows repeated", new RepeatedPairObjective(maskId)),
                ("complementary pair B=32, shared clean stream", new BlockDiffusionObjective(BlockSchedule.Constant(1, 32), maskId, new NoiseOptions(), variant: new ConversionLoss(Complementary: true))),
            })
            {
                var step = 0L;
                var seconds = Timing.MedianSeconds(args.Repeats, () =>
                {
                    using var scope = NewDisposeScope();
                    using var generator = new Generator((ulong)step++);
                    optimizer.ZeroGrad();
                    var result = objective.Compute(model, new TokenBatch(tokens), new ObjectiveContext(0, generator, 0));
                    result.Loss.backward();
                    optimizer.ClipGradients(1.0);
                    optimizer.Step(1e-4);
                });
                var trained = (double)batch * length;
                var tflops = 6.0 * parameters * trained / seconds / 1e12;
                arMs ??= seconds * 1000;
                Console.WriteLine($"| {TorchRuntime.DTypeName(dtype)} | {name} | {seconds * 1000:F0} | {trained / seconds:F0} | {tflops:F3} | {100 * tflops * 1000 / peak:F0}% | {seconds * 1000 / arMs:F2}x |");
            }
        }
        Console.WriteLine();
        Console.WriteLine("MFU counts 6 x parameters per trained token; the block-diffusion step also runs the clean half (2L tokens), which this count leaves out on purpose: it is the price of the objective.");
        Console.WriteLine("A complementary pair trains every token once per step on two noisy views: as repeated rows the model runs 4L tokens per row, sharing the clean stream 3L.");
    }

    /// <summary>
    /// A complementary pair the way it was trained before the views shared their clean stream: the batch repeated,
    /// each row its own [x_t ; x]. The same loss (BlockDiffusionLossTests pins the equality), for the before/after row.
    /// </summary>
    private sealed class RepeatedPairObjective(int maskId) : ITrainingObjective
    {
        public string Name => "complementary, repeated rows";

        public int BlockSizeAt(long step) => 32;

        public ObjectiveResult Compute(CausalLM model, TokenBatch batch, ObjectiveContext context)
        {
            using var scope = NewDisposeScope();
            var all = ones_like(batch.Tokens, dtype: ScalarType.Bool);
            var draw = ComplementaryMasking.WithComplement(NoiseSampler.Draw(batch.Tokens, 32, maskId, context.Generator, new NoiseOptions(), all), batch.Tokens, all);
            using var result = BlockDiffusionLoss.Compute(model, new TokenBatch(batch.Tokens.repeat(2, 1)), 32, draw);
            return new ObjectiveResult(result.Loss.alias().MoveToOuterDisposeScope(), result.TokenCount.alias().MoveToOuterDisposeScope());
        }
    }
}
