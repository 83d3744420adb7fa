namespace Dllm.Demo;

/// <summary>
/// A task with one checkable answer. The model sees <see cref="Prompt"/> and must produce <see cref="Answer"/>,
/// which starts with the space that follows the prompt, so prompt + answer is the training document.
/// </summary>
public sealed record DemoTask(string Kind, string Prompt, string Answer)
{
    /// <summary>The task as one training document.</summary>
    public string Document => Prompt + Answer;
}

/// <summary>How many words a copy or reverse list holds, both ends included.</summary>
public readonly record struct ListLengths(int Min, int Max)
{
    public const int DefaultMin = 8, DefaultMax = 24;

    /// <summary>The full demo's lists: 8 to 24 words, answers long enough for many tokens per forward.</summary>
    public static ListLengths Default { get; } = new(DefaultMin, DefaultMax);
}

/// <summary>One family of checkable tasks: draws a random instance with its exact answer.</summary>
internal interface ITaskKind
{
    string Name { get; }

    /// <param name="lengths">The copy / reverse list lengths; kinds with their own sizes ignore it.</param>
    DemoTask Next(SeededRandom rng, ListLengths lengths);
}

/// <summary>
/// The demo's task kinds. Answers are long (by default 8 to 24 tokens, and the EOS; the quick demo's are 3 to 6) and
/// fully determined by the prompt, which is what parallel decoding needs to show: a model that knows the answer can
/// commit many of its tokens per forward. Items are common words, each one token after the demo's BPE, and digits
/// are one token each, so an answer's length in tokens is its item count (lookup: three tokens per entry).
/// <list type="bullet">
/// <item>copy: "Copy: red cat sun ... ->" -> " red cat sun ..."; 8-24 distinct words by default.</item>
/// <item>reverse: "Reverse: red cat sun ... ->" -> " ... sun cat red"; 8-24 distinct words by default.</item>
/// <item>lookup (scaffold): "Table: cat=3 sun=7 ... Find: sun cat sun ->" -> " sun=7 cat=3 sun=7"; 4-8 keys, 4-12 queries.</item>
/// <item>sort (scaffold): "Sort: q b x ... ->" -> " b q x ..."; 6-14 distinct letters.</item>
/// </list>
/// Only copy and reverse are evaluated (SFT tasks and held-out tests): they are the kinds the demo's parent
/// learns. Lookup was evaluated until the parent was measured never to learn its values (keys right, values at
/// chance, in every format and budget tried up to 3000 steps; docs/benchmarks.md, "Demo models"), so it scored 0%
/// for every stage and only diluted the comparison. Sorting decodes about one token per forward in a small dLLM
/// (every slot depends on the ones before it). Both stay in the pre-training text as
/// <see cref="Scaffolds">scaffolds</see>: every AR run that learned to copy had them there, and removing them would
/// change the text the demo's measured transition rests on.
/// </summary>
internal static class TaskKinds
{
    // Item lists first: static fields initialise in text order, and the kinds below read them.
    /// <summary>
    /// 32 common story words, each one BPE token. An AR model learns to copy in an abrupt transition (an induction
    /// head forms) whose timing varies from run to run; fewer distinct items bring it sooner: with 64 words the demo's
    /// 0.87 M-parameter model copied 47% of tokens at step 1500, with these 32 it copies 96-99.9% by 2000-3000 steps
    /// at the default init scale, by 800-1200 steps at the demo's (docs/benchmarks.md, "Demo models").
    /// </summary>
    public static readonly string[] Words =
    [
        "red", "blue", "green", "yellow", "pink", "white", "black", "brown", "big", "small", "happy", "sad", "cat", "dog",
        "bird", "fish", "frog", "duck", "bear", "fox", "ball", "kite", "cake", "tree", "boat", "book", "sun", "moon",
        "star", "hat", "box", "cup",
    ];

    public static readonly string[] Letters = "abcdefghijklmnopqrstuvwxyz".Select(c => c.ToString()).ToArray();

    /// <summary>The evaluated kinds: in the pre-training text, the SFT tasks and the held-out tests.</summary>
    public static IReadOnlyList<ITaskKind> All { get; } = [ListTask.Copy, ListTask.Reverse];

    /// <summary>
    /// Kinds only in the pre-training text, in this order (it fixes the text: the same seed writes the same bytes as
    /// when lookup was evaluated). Sorting letters is learned in a few hundred steps, long before copying; lookup's
    /// keys are learned, its values are not. Whether either speeds the copy transition was not isolated
    /// (docs/benchmarks.md, "Demo models").
    /// </summary>
    public static IReadOnlyList<ITaskKind> Scaffolds { get; } = [new LookupTask(), ListTask.Sort];

    public static IReadOnlyList<string> Names { get; } = All.Select(k => k.Name).ToArray();

    /// <exception cref="DllmException">No kind has that name.</exception>
    public static ITaskKind Find(string name) =>
        All.Concat(Scaffolds).FirstOrDefault(k => k.Name == name)
        ?? throw new DllmException($"unknown demo task kind '{name}' (known: {string.Join(", ", All.Concat(Scaffolds).Select(k => k.Name))})");

    /// <summary>An endless stream of tasks of one kind; each kind gets its own sub-stream of the seed.</summary>
    /// <exception cref="DllmException">No kind has that name (thrown at the call, not on enumeration).</exception>
    public static IEnumerable<DemoTask> Stream(string name, long seed, ListLengths? lengths = null) =>
        Endless(Find(name), SeededRandom.Derive(seed, "task:" + name), lengths ?? ListLengths.Default);

    // The generator is made inside the iterator, so enumerating the stream twice gives the same tasks.
    private static IEnumerable<DemoTask> Endless(ITaskKind kind, ulong seed, ListLengths lengths)
    {
        var rng = new SeededRandom(seed);
        while (true) yield return kind.Next(rng, lengths);
    }
}

/// <summary>
/// copy and reverse: a list of distinct words in (by default 8 to 24 of the 32), the same words out in some order;
/// sort (the scaffold): 6 to 14 distinct letters in, alphabetical order out, whatever the corpus's list lengths.
/// </summary>
internal sealed class ListTask(string name, string verb, string[] items, ListLengths? ownLengths, Func<List<string>, IEnumerable<string>> order) : ITaskKind
{
    public static ListTask Copy { get; } = new("copy", "Copy", TaskKinds.Words, null, l => l);
    public static ListTask Reverse { get; } = new("reverse", "Reverse", TaskKinds.Words, null, l => Enumerable.Reverse(l));
    public static ListTask Sort { get; } = new("sort", "Sort", TaskKinds.Letters, new ListLengths(6, 14), l => l.Order(StringComparer.Ordinal));

    public string Name => name;

    public DemoTask Next(SeededRandom rng, ListLengths lengths)
    {
        var (min, max) = ownLengths ?? lengths;
        var list = rng.Sample(items, rng.Between(min, max));
        return new DemoTask(name, $"{verb}: {string.Join(' ', list)} ->", " " + string.Join(' ', order(list)));
    }
}

/// <summary>
/// lookup (a scaffold): a table of word keys with digit values ("cat=3"), then the keys to look up (repeats allowed);
/// the answer lists each asked key with its value. The value needs a two-step lookup, and the demo's AR parent learns
/// the keys but not the values within its budget, written "cat=3", "cat3" or "cat 3" alike (docs/benchmarks.md,
/// "Demo models").
/// </summary>
internal sealed class LookupTask : ITaskKind
{
    public string Name => "lookup";

    public DemoTask Next(SeededRandom rng, ListLengths lengths)
    {
        var keys = rng.Sample(TaskKinds.Words, rng.Between(4, 8));
        var values = keys.ToDictionary(k => k, _ => rng.NextBelow(10));
        var asked = Enumerable.Range(0, rng.Between(4, 12)).Select(_ => rng.Pick(keys)).ToList();
        var table = string.Join(' ', keys.Select(k => $"{k}={values[k]}"));
        return new DemoTask(Name, $"Table: {table}. Find: {string.Join(' ', asked)} ->", " " + string.Join(' ', asked.Select(k => $"{k}={values[k]}")));
    }
}
