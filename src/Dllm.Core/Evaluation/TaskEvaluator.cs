using System.Diagnostics;
using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Evaluation;

/// <summary>
/// Accuracy and decoding speed on a task set. Tokens per forward counts every decoded token, the stop token
/// included (the model produced it; an AR model is exactly 1), over decoding forwards (the prompt's prefill is
/// not one). Tokens per second counts the same tokens over the wall time of the whole set.
/// </summary>
public sealed record TaskReport(int Items, int Correct, long Tokens, long Forwards, double Seconds, IReadOnlyList<TaskOutcome> Details)
{
    public double Accuracy => Items == 0 ? 0 : (double)Correct / Items;
    public double TokensPerForward => Forwards == 0 ? 0 : (double)Tokens / Forwards;
    public double TokensPerSecond => Seconds <= 0 ? 0 : Tokens / Seconds;

    /// <summary>
    /// The most tokens per forward these outputs allow: block decoding needs at least one forward per block an output
    /// touches (its first block starts with the prompt's tail), AR one per token. How close <see cref="TokensPerForward"/>
    /// comes to it is what the decoding rule leaves on the table.
    /// </summary>
    public double TokensPerForwardCeiling => Details.Sum(d => d.FewestForwards) is var f and > 0 ? (double)Tokens / f : 0;

    /// <summary>Accuracy and tokens per forward per task kind, in the order kinds first appear.</summary>
    public IReadOnlyList<(string Kind, int Items, double Accuracy, double TokensPerForward)> ByKind =>
        Details.GroupBy(d => d.Item.Kind).Select(g => (g.Key, g.Count(), (double)g.Count(d => d.Correct) / g.Count(),
            (double)g.Sum(d => d.Tokens) / Math.Max(1, g.Sum(d => d.Forwards)))).ToList();
}

/// <summary>One task decoded: the output, whether it is right, the tokens and forwards it took, and the fewest forwards that output allows.</summary>
public sealed record TaskOutcome(TaskItem Item, string Output, bool Correct, int Tokens, int Forwards, int FewestForwards = 0);

/// <summary>A dLLM and its AR parent on the same tasks, timed in interleaved passes; speeds are medians over passes.</summary>
public sealed record TaskComparison(TaskReport Diffusion, TaskReport Ar, double DiffusionTokensPerSecond, double ArTokensPerSecond, int Passes)
{
    public double SpeedRatio => ArTokensPerSecond <= 0 ? 0 : DiffusionTokensPerSecond / ArTokensPerSecond;
    public double AccuracyGap => Diffusion.Accuracy - Ar.Accuracy;
}

public static class TaskEvaluator
{
    /// <summary>Decodes every prompt (in batches) and scores the answers.</summary>
    public static TaskReport Evaluate(LoadedModel model, IReadOnlyList<TaskItem> items, GenerationRequest template, int batchSize = 8, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        if (batchSize <= 0) throw new DllmException($"batch size must be positive, got {batchSize}");
        var details = new List<TaskOutcome>();
        long tokens = 0, forwards = 0;
        var b = TextGeneration.ResolveBlock(model, template.Block).BlockSize;   // for the ceiling of block-decoded outputs
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < items.Count; i += batchSize)
        {
            var batch = items.Skip(i).Take(batchSize).ToList();
            var results = TextGeneration.Generate(model, batch.Select(t => template with { Prompt = t.Prompt }).ToList(), cancel);
            for (var j = 0; j < batch.Count; j++)
            {
                var r = results[j];
                var fewest = r.Mode == DecodeMode.Ar ? r.DecodedTokens : (r.PromptTokens % b + r.DecodedTokens + b - 1) / b;
                details.Add(new TaskOutcome(batch[j], r.Text, AnswerExtraction.IsCorrect(r.Text, batch[j].Answer), r.DecodedTokens, r.Forwards, fewest));
                tokens += results[j].DecodedTokens;
                forwards += results[j].Forwards;
            }
            progress?.Report(details.Count);
        }
        return new TaskReport(details.Count, details.Count(d => d.Correct), tokens, forwards, clock.Elapsed.TotalSeconds, details);
    }

    /// <summary>
    /// The dLLM (block decoding) and the AR model (KV-cached AR decoding) on the same items, one pass of each
    /// in turn, <paramref name="passes"/> times, so drifts in machine speed hit both alike. Greedy decoding gives
    /// the same answers every pass; the reports are the first pass's, the speeds the medians.
    /// </summary>
    public static TaskComparison Compare(LoadedModel diffusion, LoadedModel ar, IReadOnlyList<TaskItem> items, GenerationRequest template,
        int batchSize, int passes, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        if (passes <= 0) throw new DllmException($"passes must be positive, got {passes}");
        var dllm = new List<TaskReport>();
        var arReports = new List<TaskReport>();
        for (var p = 0; p < passes; p++)
        {
            dllm.Add(Evaluate(diffusion, items, template with { Mode = DecodeMode.Diffusion }, batchSize, cancel: cancel));
            arReports.Add(Evaluate(ar, items, template with { Mode = DecodeMode.Ar, Block = null }, batchSize, cancel: cancel));
            progress?.Report(p + 1);
        }
        return new TaskComparison(dllm[0], arReports[0], Median(dllm.Select(r => r.TokensPerSecond)), Median(arReports.Select(r => r.TokensPerSecond)), passes);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
