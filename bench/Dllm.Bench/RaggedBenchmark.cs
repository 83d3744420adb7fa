using System.Diagnostics;
using Dllm.Config;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// What ragged attention saves when a batch mixes lengths: one long prompt and seven short ones decode together
/// (AR and block decoding at B = 32, KV cache), each row attending over the longest row's width or, grouped by
/// length, over its own columns (<see cref="DecodeSession.RaggedAttention"/>). The figure is the median time of a
/// decoding step (one forward for the eight rows) over 31 steps, the two settings alternating run by run, and the
/// most memory the batch's KV cache held (the cache keeps each length group's own columns only when ragged);
/// random-weight models of about 1 M and 10 M parameters, prompts of 40 and 448 tokens.
/// </summary>
public static class RaggedBenchmark
{
    public static void Run(BenchArgs args)
    {
        TorchRuntime.EnsureLoaded();
        if (args.Threads > 0) set_num_threads(args.Threads);
        var models = BlockCostBenchmark.SmallModels;
        var repeats = Math.Max(args.Repeats, 5);
        const int longPrompt = 448, shortPrompt = 40, shortRows = 7, steps = 32;
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine($"decoding 1 prompt of {longPrompt} tokens and {shortRows} of {shortPrompt} together, {steps - 1} steps; median step time over {repeats} alternating runs");
        Console.WriteLine();
        Console.WriteLine("| model | decoding | every row over every column: ms / step | ragged (grouped by length): ms / step | ragged / padded | KV cache, padded: MiB | KV cache, ragged: MiB |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var (name, json) in models)
        {
            var config = ModelConfigReader.Read(json.ToJsonString());
            using var model = ModelFactory.Create(config, new Placement(ScalarType.Float32, CPU));
            ModelInit.Randomize(model, seed: 1);
            model.eval();
            var random = new Random(7);
            int[] Prompt(int n) => Enumerable.Range(0, n).Select(_ => random.Next(1, config.VocabSize - 1)).ToArray();   // never the MASK id
            var prompts = new[] { Prompt(longPrompt) }.Concat(Enumerable.Range(0, shortRows).Select(_ => Prompt(shortPrompt))).ToList();
            foreach (var mode in new[] { "AR", "block B=32" })
            {
                var cacheBytes = new Dictionary<bool, long>();
                var (padded, grouped) = Timing.AlternatingMedians(repeats, ragged => StepTimes(model, mode, config.VocabSize - 1, prompts, ragged, steps, cacheBytes));
                Console.WriteLine($"| {name} | {mode} | {padded * 1e3:F2} | {grouped * 1e3:F2} | {grouped / padded:F2}x | {cacheBytes[false] / 1048576.0:F2} | {cacheBytes[true] / 1048576.0:F2} |");
            }
        }
    }

    /// <summary>
    /// Wall time of each decoding step once every prompt has joined (the prefill steps left out); the most bytes the
    /// KV cache held goes into <paramref name="cacheBytes"/>.
    /// </summary>
    private static List<double> StepTimes(CausalLM model, string mode, int mask, List<int[]> prompts, bool ragged, int steps, Dictionary<bool, long> cacheBytes)
    {
        using DecodeSession session = mode == "AR"
            ? new ArDecodeSession(model, [-1]) { RaggedAttention = ragged }
            : new BlockDecodeSession(model, new BlockDecodeOptions(BlockSize: 32), mask, [-1]) { RaggedAttention = ragged };
        var options = new DecodeOptions { MaxNewTokens = 64 };
        foreach (var p in prompts) session.Add(p, options);
        session.Step();   // prefill and the first pick
        var times = new List<double>();
        for (var i = 0; i < steps - 1; i++)
        {
            var clock = Stopwatch.StartNew();
            if (session.Step() is null) break;
            times.Add(clock.Elapsed.TotalSeconds);
            cacheBytes[ragged] = Math.Max(cacheBytes.GetValueOrDefault(ragged), session.KvCacheBytes);
        }
        return times;
    }
}
