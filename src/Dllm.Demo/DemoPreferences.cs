using System.Text.Json.Nodes;
using Dllm.Evaluation;

namespace Dllm.Demo;

/// <summary>
/// Preference pairs for the demo's DPO stage, built from the task set: the correct answer is chosen, a
/// plausible wrong one rejected (two neighbours swapped in a copy, an unreversed reversal).
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
        var items = t.Answer.Trim().Split(' ');
        switch (t.Kind)
        {
            case "reverse":
                return " " + string.Join(' ', items.Reverse());   // the items as they came: not reversed
            case "copy" when items.Length > 2:
                var i = random.NextBelow(items.Length - 1);        // two neighbours swapped: one slip in a long answer
                (items[i], items[i + 1]) = (items[i + 1], items[i]);
                return " " + string.Join(' ', items);
            default:
                return t.Answer + t.Answer;
        }
    }
}
