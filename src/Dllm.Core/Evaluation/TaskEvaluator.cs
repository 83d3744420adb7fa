using System.Diagnostics;
using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Evaluation;

/// <summary>Accuracy and decoding speed on a task set.</summary>
public sealed record TaskReport(int Items, int Correct, double TokensPerForward, double TokensPerSecond, IReadOnlyList<(TaskItem Item, string Output, bool Correct)> Details)
{
    public double Accuracy => Items == 0 ? 0 : (double)Correct / Items;
}

/// <summary>Decodes every prompt (in batches) and scores the answers; TPF and tokens/s are over all items.</summary>
public static class TaskEvaluator
{
    public static TaskReport Evaluate(LoadedModel model, IReadOnlyList<TaskItem> items, GenerationRequest template, int batchSize = 8, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        var details = new List<(TaskItem, string, bool)>();
        long tokens = 0, forwards = 0;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < items.Count; i += batchSize)
        {
            var batch = items.Skip(i).Take(batchSize).ToList();
            var results = TextGeneration.Generate(model, batch.Select(t => template with { Prompt = t.Prompt }).ToList(), cancel);
            for (var j = 0; j < batch.Count; j++)
            {
                details.Add((batch[j], results[j].Text, AnswerExtraction.IsCorrect(results[j].Text, batch[j].Answer)));
                tokens += results[j].TokenIds.Length + results[j].StopTokens;   // the stop token was decoded too
                forwards += results[j].Forwards;
            }
            progress?.Report(details.Count);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        return new TaskReport(details.Count, details.Count(d => d.Item3), forwards == 0 ? 0 : (double)tokens / forwards, seconds <= 0 ? 0 : tokens / seconds, details);
    }
}
