namespace Dllm.Demo;

/// <summary>Sizes and seed of the demo corpus; the defaults give about 2 MB of training text.</summary>
/// <param name="Stories">Story documents, shared out between train.txt and valid.txt.</param>
/// <param name="TasksPerKind">Task documents per kind for train.txt / valid.txt.</param>
/// <param name="TestTasksPerKind">Held-out tasks per kind for tasks_test.jsonl; never in the training text.</param>
/// <param name="ValidationFraction">Share of the documents (stories and tasks) that goes to valid.txt.</param>
/// <param name="MinItems">Fewest words in a copy / reverse list.</param>
/// <param name="MaxItems">Most words in a copy / reverse list (at most the 32 distinct words there are).</param>
/// <param name="Scaffolds">Whether the scaffold kinds (lookup, sort) go into the pre-training text.</param>
public sealed record DemoCorpusOptions(
    int Stories = 6000,
    int TasksPerKind = 1500,
    int TestTasksPerKind = 100,
    double ValidationFraction = 0.05,
    long Seed = 1234,
    int MinItems = ListLengths.DefaultMin,
    int MaxItems = ListLengths.DefaultMax,
    bool Scaffolds = true)
{
    /// <summary>The list lengths of the copy and reverse tasks.</summary>
    public ListLengths Lengths => new(MinItems, MaxItems);

    /// <exception cref="DllmException">A count is negative, the fraction is outside [0, 1), or the list lengths are out of range.</exception>
    public void Validate()
    {
        if (Stories < 0) throw new DllmException($"demo corpus: stories must be >= 0, got {Stories}");
        if (TasksPerKind < 0) throw new DllmException($"demo corpus: tasks per kind must be >= 0, got {TasksPerKind}");
        if (TestTasksPerKind < 0) throw new DllmException($"demo corpus: test tasks per kind must be >= 0, got {TestTasksPerKind}");
        if (!(ValidationFraction is >= 0 and < 1))
            throw new DllmException($"demo corpus: validation fraction must be in [0, 1), got {ValidationFraction}");
        if (MinItems < 2 || MaxItems < MinItems || MaxItems > TaskKinds.Words.Length)
            throw new DllmException($"demo corpus: list lengths must satisfy 2 <= min <= max <= {TaskKinds.Words.Length}, got {MinItems}..{MaxItems}");
    }
}
