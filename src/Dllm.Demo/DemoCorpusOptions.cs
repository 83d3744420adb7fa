namespace Dllm.Demo;

/// <summary>Sizes and seed of the demo corpus; the defaults give about 2 MB of training text.</summary>
/// <param name="Stories">Story documents, shared out between train.txt and valid.txt.</param>
/// <param name="TasksPerKind">Task documents per kind for train.txt / valid.txt.</param>
/// <param name="TestTasksPerKind">Held-out tasks per kind for tasks_test.jsonl; never in the training text.</param>
/// <param name="ValidationFraction">Share of the documents (stories and tasks) that goes to valid.txt.</param>
public sealed record DemoCorpusOptions(
    int Stories = 6000,
    int TasksPerKind = 1500,
    int TestTasksPerKind = 100,
    double ValidationFraction = 0.05,
    long Seed = 1234)
{
    /// <exception cref="DllmException">A count is negative or the fraction is outside [0, 1).</exception>
    public void Validate()
    {
        if (Stories < 0) throw new DllmException($"demo corpus: stories must be >= 0, got {Stories}");
        if (TasksPerKind < 0) throw new DllmException($"demo corpus: tasks per kind must be >= 0, got {TasksPerKind}");
        if (TestTasksPerKind < 0) throw new DllmException($"demo corpus: test tasks per kind must be >= 0, got {TestTasksPerKind}");
        if (!(ValidationFraction is >= 0 and < 1))
            throw new DllmException($"demo corpus: validation fraction must be in [0, 1), got {ValidationFraction}");
    }
}
