using System.Diagnostics;
using Dllm.Evaluation;
using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Bench;

/// <summary>
/// Block decoding on a converted model's task set: tokens per forward, tokens/s and accuracy for a grid
/// of thresholds and block sizes, beside the same network decoded AR with its KV cache, the uncached
/// mode (whole window recomputed every step, as the reference generate), and the share of time the
/// decoder spends outside model forwards. Every prompt decodes alone (batch 1), as the reference does.
/// </summary>
public static class DecodeBenchmark
{
    private sealed record Row(string Setting, double Tpf, double TokensPerSecond, double Accuracy, double Overhead, int Forwards, int Tokens, int Block = 0,
        double Ceiling = 0);

    public static void Run(string[] args)
    {
        string model = "demo/cap", tasks = "demo/data/tasks_test.jsonl";
        string? arModel = null;
        var items = 60;
        var repeats = 5;
        var threads = 0;
        var maxNew = 40;   // the demo's limit: its longest answers are 24 tokens and the EOS
        int[] blocks = [4, 8, 16, 32];
        double[] thresholds = [1.0, 0.95, 0.9, 0.8, 0.7];
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--tasks": tasks = args[++i]; break;
                case "--ar-model": arModel = args[++i]; break;
                case "--items": items = int.Parse(args[++i]); break;
                case "--repeats": repeats = int.Parse(args[++i]); break;
                case "--max-new-tokens": maxNew = int.Parse(args[++i]); break;
                case "--blocks": blocks = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                case "--thresholds": thresholds = args[++i].Split(',').Select(double.Parse).ToArray(); break;
                case "--threads": threads = int.Parse(args[++i]); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (threads > 0) TorchSharp.torch.set_num_threads(threads);
        using var loaded = LoadedModel.Load(model);
        var maskId = loaded.MaskTokenId ?? throw new ArgumentException($"{model} has no MASK token");
        var list = TaskFile.Read(tasks).Take(items).ToList();
        var prompts = list.Select(t => (IReadOnlyList<int>)loaded.Tokenizer.Encode(t.Prompt, addSpecialTokens: true)).ToList();
        var options = new DecodeOptions { MaxNewTokens = maxNew, StopTokenIds = loaded.StopTokenIds, PadTokenId = loaded.PadTokenId };

        Console.WriteLine($"machine: {Timing.Machine()}");
        Console.WriteLine($"model: {Path.GetFullPath(model)} ({loaded.Model.parameters().Sum(p => p.numel()) / 1e6:F2} M parameters), {list.Count} tasks from {tasks}, greedy, at most {maxNew} new tokens, batch 1, median of {repeats} passes");
        Console.WriteLine();
        Row Measure(string setting, Func<IReadOnlyList<int>, DecodeProfile, IEnumerable<DecodeStep>> decode, int block = 0) => MeasureWith(loaded, setting, decode, block);
        Row MeasureWith(LoadedModel loaded, string setting, Func<IReadOnlyList<int>, DecodeProfile, IEnumerable<DecodeStep>> decode, int block = 0)
        {
            // One warm-up item, then timed passes over all of them: greedy decoding gives the same tokens every
            // pass, so the counts are the same in every pass and the times are the median pass.
            foreach (var _ in decode(prompts[0], new DecodeProfile())) { }
            var passes = Enumerable.Range(0, repeats).Select(_ => Pass()).OrderBy(p => p.Seconds).ToList();
            var median = passes[passes.Count / 2];
            return median.Row;

            (double Seconds, Row Row) Pass()
            {
                var profile = new DecodeProfile();
                int tokens = 0, correct = 0, forwards = 0, fewest = 0;
                var clock = Stopwatch.StartNew();
                for (var i = 0; i < prompts.Count; i++)
                {
                    var steps = decode(prompts[i], profile).ToList();
                    // The decoders' own forward numbering: block decoding counts decoding forwards (prefill
                    // excluded), AR counts the prefill as the forward that produced the first token.
                    forwards += steps.Max(s => s.Forward);
                    var result = DecodeCollector.Collect(steps, 1)[0];
                    var decoded = result.Tokens.Length + (result.Finish == FinishReason.Stop ? 1 : 0);
                    tokens += decoded;
                    // Block decoding needs at least one forward per block the output touches (the first block starts
                    // with the prompt's tail), so these outputs allow at most tokens / fewest tokens per forward.
                    if (block > 0) fewest += (prompts[i].Count % block + decoded + block - 1) / block;
                    if (AnswerExtraction.IsCorrect(loaded.Tokenizer.Decode(result.Tokens, skipSpecialTokens: true), list[i].Answer)) correct++;
                }
                var seconds = clock.Elapsed.TotalSeconds;
                return (seconds, new Row(setting, (double)tokens / forwards, tokens / seconds, (double)correct / list.Count,
                    1 - profile.ForwardTime.TotalSeconds / seconds, forwards, tokens, block, block > 0 ? (double)tokens / fewest : 0));
            }
        }

        // AR decoding of the dLLM itself gives its speed, not sensible answers (it predicts the token at a
        // masked position, not the next one); --ar-model adds the pre-trained AR model for accuracy.
        var rows = new List<Row>
        {
            Measure("AR, KV cache (this dLLM's network)", (p, prof) => ArDecoder.Run(loaded.Model, [p], options, profile: prof)),
        };
        if (arModel is not null)
        {
            using var ar = LoadedModel.Load(arModel);
            if (ar.Tokenizer.Encode(list[0].Prompt, addSpecialTokens: true).SequenceEqual(prompts[0]) is false)
                throw new ArgumentException($"{arModel} does not share {model}'s tokenizer");
            rows.Add(MeasureWith(ar, $"AR, KV cache ({Path.GetFileName(Path.GetFullPath(arModel))})", (p, prof) => ArDecoder.Run(ar.Model, [p], options, profile: prof)));
        }
        foreach (var b in blocks)
            foreach (var t in thresholds)
                rows.Add(Measure($"B={b}, threshold {t}", (p, prof) => BlockDecoder.Run(loaded.Model, [p], options, new BlockDecodeOptions(b, t, Math.Max(b, 1)), maskId, profile: prof), b));
        // The reference (whole window recomputed every step, as the official generate) at the largest block and the
        // second threshold given (the first when only one is): the cached rows above read against it.
        var (refBlock, refThreshold) = (blocks.Max(), thresholds[Math.Min(1, thresholds.Length - 1)]);
        rows.Add(Measure($"B={refBlock}, threshold {refThreshold}, no cache (reference)",
            (p, prof) => BlockDecoder.Run(loaded.Model, [p], options, new BlockDecodeOptions(refBlock, refThreshold, refBlock, UseCache: false), maskId, profile: prof), refBlock));

        Console.WriteLine("| decoding | tokens / forward | tokens / s | accuracy | decoder overhead | forwards | tokens | most tokens / forward these outputs allow |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            Console.WriteLine($"| {r.Setting} | {r.Tpf:F2} | {r.TokensPerSecond:F0} | {r.Accuracy:P1} | {r.Overhead:P1} | {r.Forwards} | {r.Tokens} | {(r.Block > 0 ? $"{r.Ceiling:F2}" : "1.00")} |");
    }
}
