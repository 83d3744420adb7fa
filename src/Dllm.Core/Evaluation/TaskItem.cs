using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Evaluation;

/// <summary>A prompt with a checkable answer (demo tasks, GSM8K-style problems).</summary>
public sealed record TaskItem(string Prompt, string Answer, string Kind = "");

public static class TaskFile
{
    /// <summary>
    /// Reads JSONL with prompt/answer (and optional kind), or GSM8K's question/answer where the answer
    /// ends in "#### N" (the prompt becomes "Question: ...\nAnswer:" and the answer N).
    /// </summary>
    public static IReadOnlyList<TaskItem> Read(string path)
    {
        if (!File.Exists(path)) throw new DllmException($"task file not found: {path}");
        var items = new List<TaskItem>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = IO.StrictJson.Parse(line) as JsonObject ?? throw new DllmException($"{path} line {lineNumber}: not a JSON object"); }
            catch (JsonException e) { throw new DllmException($"{path} line {lineNumber}: not valid JSON ({e.Message})"); }
            string? Field(string name) => o[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            if (Field("prompt") is { } prompt && Field("answer") is { } answer)
                items.Add(new TaskItem(prompt, answer, Field("kind") ?? ""));
            else if (Field("question") is { } question && Field("answer") is { } solution)
                items.Add(new TaskItem($"Question: {question}\nAnswer:", AnswerExtraction.Gsm8kFinal(solution) ?? solution, "gsm8k"));
            else throw new DllmException($"{path} line {lineNumber}: expected string fields prompt/answer (or question/answer)");
        }
        if (items.Count == 0) throw new DllmException($"{path} holds no tasks");
        return items;
    }
}
