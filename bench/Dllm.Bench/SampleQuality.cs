using System.Text.Json.Nodes;
using Dllm.Evaluation;
using Dllm.Generation;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// Generation quality of a model as a judge model sees it: N continuations of one prompt sampled at
/// temperature 1 with seeds 1..N (diffusion models decode block-wise at their own block size and the given
/// threshold), each scored by the judge (the original AR model) as its perplexity over the continuation,
/// plus the share of repeated 4-grams within a continuation. Prints one JSON line.
/// </summary>
public static class SampleQuality
{
    public static void Run(string[] args)
    {
        string? model = null, judge = null;
        var prompt = "Once upon a time";
        int count = 100, maxNew = 100;
        var threshold = 0.95;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--judge": judge = args[++i]; break;
                case "--prompt": prompt = args[++i]; break;
                case "--count": count = int.Parse(args[++i]); break;
                case "--max-new": maxNew = int.Parse(args[++i]); break;
                case "--threshold": threshold = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (model is null || judge is null) throw new ArgumentException("usage: samples --model DIR --judge AR_DIR [--prompt TEXT] [--count 100] [--max-new 100] [--threshold 0.95]");
        using var generator = LoadedModel.Load(model);
        using var scorer = LoadedModel.Load(judge);
        var promptIds = scorer.Tokenizer.Encode(prompt, addSpecialTokens: true);
        double nll = 0, repeated = 0, grams = 0;
        long tokens = 0;
        for (var seed = 1; seed <= count; seed++)
        {
            var request = new GenerationRequest
            {
                Prompt = prompt,
                Options = new DecodeOptions { MaxNewTokens = maxNew, Sampling = new SamplingOptions(1.0, Seed: seed) },
                Block = generator.IsDiffusion ? new BlockDecodeOptions(generator.DefaultBlockSize, threshold) : null,
            };
            var ids = TextGeneration.Generate(generator, request).TokenIds;
            if (ids.Length == 0) continue;
            // The judge scores the continuation after the prompt (the EOS that ended it, if any, is not scored).
            var doc = new ScoredDocument(promptIds.Concat(ids).ToArray(), promptIds.Select(_ => false).Concat(ids.Select(_ => true)).ToArray());
            var r = ArNllEvaluator.Evaluate(scorer.Model, [doc]);
            nll += r.TotalLoss;
            tokens += r.Tokens;
            var seen = new HashSet<(int, int, int, int)>();
            for (var j = 3; j < ids.Length; j++)
            {
                grams++;
                if (!seen.Add((ids[j - 3], ids[j - 2], ids[j - 1], ids[j]))) repeated++;
            }
        }
        Console.WriteLine(new JsonObject
        {
            ["model"] = model, ["judge"] = judge, ["samples"] = count, ["tokens"] = tokens,
            ["judge_ppl"] = Math.Round(Math.Exp(nll / Math.Max(1, tokens)), 3),
            ["repeated_4grams"] = Math.Round(grams == 0 ? 0 : repeated / grams, 4),
            ["mean_length"] = Math.Round((double)tokens / count, 1),
        }.ToJsonString());
    }
}
