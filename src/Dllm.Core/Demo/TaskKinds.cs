namespace Dllm.Demo;

/// <summary>The task kinds by name, in the order the corpus lists them.</summary>
internal static class TaskKinds
{
    public static IReadOnlyList<ITaskKind> All { get; } =
        [new ArithmeticTasks(), WordSequenceTasks.Copy, WordSequenceTasks.Reverse, new RecallTasks()];

    public static IReadOnlyList<string> Names { get; } = All.Select(k => k.Name).ToArray();

    /// <exception cref="DllmException">No kind has that name.</exception>
    public static ITaskKind Find(string name) =>
        All.FirstOrDefault(k => k.Name == name)
        ?? throw new DllmException($"unknown demo task kind '{name}' (known: {string.Join(", ", Names)})");

    /// <summary>An endless stream of tasks of one kind; each kind gets its own sub-stream of the seed.</summary>
    /// <exception cref="DllmException">No kind has that name (thrown at the call, not on enumeration).</exception>
    public static IEnumerable<DemoTask> Stream(string name, long seed) =>
        Endless(Find(name), SeededRandom.Derive(seed, "task:" + name));

    // The generator is made inside the iterator, so enumerating the stream twice gives the same tasks.
    private static IEnumerable<DemoTask> Endless(ITaskKind kind, ulong seed)
    {
        var rng = new SeededRandom(seed);
        while (true) yield return kind.Next(rng);
    }
}
