using System.Diagnostics;
using Dllm.Config;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// What batched prefill saves when prompts arrive together: a burst of N prompts (of mixed lengths, 64-160 tokens, or all of 128) is
/// added to an idle decode session, and the clock runs until every one of them has its first token (the burst's time
/// to first token), with the prompts prefilled in one shared forward (<see cref="DecodeSession.BatchPrefill"/>) and
/// with one forward each. AR (KV cache) and block decoding (B = 32), random-weight Llama-shaped models of about 1 M
/// and 10 M parameters; the two settings alternate run by run and the figures are medians.
/// </summary>
public static class PrefillBenchmark
{
    public static void Run(BenchArgs args)
    {
        TorchRuntime.EnsureLoaded();
        if (args.Threads > 0) set_num_threads(args.Threads);
        var models = BlockCostBenchmark.SmallModels;
        int[] bursts = args.Quick ? [4] : [4, 16];
        var repeats = Math.Max(args.Repeats, 7);
        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine($"a burst of N prompts (of mixed lengths, or all 128 tokens) into an idle session until each has its first token; medians of {repeats}, the settings alternating");
        Console.WriteLine();
        Console.WriteLine("| model | decoding | N | prompt tokens | one prefill each: ms (prefill forwards) | batched: ms (prefill forwards) | batched / one each |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---:|");
        foreach (var (name, json) in models)
        {
            var config = ModelConfigReader.Read(json.ToJsonString());
            using var model = ModelFactory.Create(config, new Placement(ScalarType.Float32, CPU));
            ModelInit.Randomize(model, seed: 1);
            model.eval();
            var mask = config.VocabSize - 1;
            foreach (var mode in new[] { "AR", "block B=32" })
                foreach (var n in bursts)
                foreach (var (shortest, longest) in new[] { (64, 160), (128, 128) })
                {
                    var random = new Random(n);
                    var prompts = Enumerable.Range(0, n)
                        .Select(_ => Enumerable.Range(0, random.Next(shortest, longest + 1)).Select(_ => random.Next(1, mask)).ToArray()).ToList();
                    var forwards = new Dictionary<bool, int>();
                    var (one, together) = Timing.AlternatingMedians(repeats, batched =>
                    {
                        var (seconds, prefills) = Burst(model, mode, mask, prompts, batched);
                        forwards[batched] = prefills;
                        return [seconds];
                    });
                    Console.WriteLine($"| {name} | {mode} | {n} | {(shortest == longest ? $"{shortest}" : $"{shortest}-{longest}")} | {one * 1e3:F1} ({forwards[false]}) | {together * 1e3:F1} ({forwards[true]}) | {together / one:F2}x |");
                }
        }
        Console.WriteLine();
        Console.WriteLine("Prefill forwards: one per prompt alone; batched, one per group of prompts of similar length (AR: within 16 tokens; block decoding: contexts within one block, a context being every full block but the last, which the first decoding forward commits).");
    }

    private static (double Seconds, int PrefillForwards) Burst(CausalLM model, string mode, int mask, List<int[]> prompts, bool batched)
    {
        var profile = new DecodeProfile();
        using DecodeSession session = mode == "AR"
            ? new ArDecodeSession(model, [0], profile: profile) { BatchPrefill = batched }
            : new BlockDecodeSession(model, new BlockDecodeOptions(BlockSize: 32), mask, [0], profile: profile) { BatchPrefill = batched };
        var options = new DecodeOptions { MaxNewTokens = 32 };
        var clock = Stopwatch.StartNew();
        var waiting = prompts.Select(p => session.Add(p, options)).ToHashSet();
        while (waiting.Count > 0 && session.Step() is { } step)
            foreach (var u in step.Updates)
                if (u.Tokens.Length > 0) waiting.Remove(u.Sequence);
        return (clock.Elapsed.TotalSeconds, profile.PrefillForwards);
    }
}
