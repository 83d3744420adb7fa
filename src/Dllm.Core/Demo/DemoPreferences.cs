using System.Text.Json.Nodes;
using Dllm.Evaluation;

namespace Dllm.Demo;

/// <summary>
/// Preference pairs for the demo's DPO stage, built from the task set: the correct answer is chosen, a
/// plausible wrong one rejected (an off-by-a-few sum, a shuffled copy, an unreversed reversal, another
/// key's value).
/// </summary>
public static class DemoPreferences
{
    public static IReadOnlyList<(TaskItem Task, string Wrong)> Build(IReadOnlyList<TaskItem> tasks, long seed)
    {
        var random = new SeededRandom(SeededRandom.Derive(seed, "preferences"));
        return tasks.Select(t => (t, Wrong(t, random))).Where(p => p.Item2 != p.t.Answer).ToList();
    }

    public static void Write(string path, IReadOnlyList<(TaskItem Task, string Wrong)> pairs) =>
        IO.AtomicFile.WriteAllText(path, string.Concat(pairs.Select(p => new JsonObject
        {
            ["prompt"] = p.Task.Prompt,
            ["chosen"] = p.Task.Answer,
            ["rejected"] = p.Wrong,
        }.ToJsonString() + "\n")));

    private static string Wrong(TaskItem t, SeededRandom random)
    {
        var words = t.Answer.Trim().Split(' ');
        switch (t.Kind)
        {
            case "arithmetic" when int.TryParse(t.Answer.Trim(), out var n):
                var delta = 1 + random.NextBelow(9);
                return " " + (n - delta >= 0 && random.NextBelow(2) == 0 ? n - delta : n + delta);
            case "reverse":
                return " " + string.Join(' ', words.Reverse());   // the words as they came: not reversed
            case "copy" when words.Length > 1:
                return " " + string.Join(' ', words.Skip(1).Append(words[0]));
            case "recall" when int.TryParse(t.Answer.Trim(), out var v):
                return " " + ((v + 1 + random.NextBelow(9)) % 10);
            default:
                return t.Answer + t.Answer;
        }
    }
}
