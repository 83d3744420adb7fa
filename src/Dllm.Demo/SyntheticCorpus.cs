using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dllm.IO;

namespace Dllm.Demo;

/// <summary>
/// The embedded data of <c>dllm demo</c>: grammar-made stories and checkable tasks, fully determined by a seed
/// (SeededRandom, never System.Random), so every machine builds the same corpus without a download.
/// </summary>
/// <remarks>
/// Task formats: see <see cref="TaskKinds"/> (copy and reverse evaluated, lookup and sort as pre-training scaffolds;
/// the answer starts with a space and is what the model must produce after the prompt).
/// Text files use the TinyStories layout: each document, then a line holding only "&lt;|endoftext|&gt;".
/// Stories may contain newlines; documents never contain that line.
/// </remarks>
public static class SyntheticCorpus
{
    public const string DocumentSeparator = "<|endoftext|>";
    public const string TrainFile = "train.txt";
    public const string ValidFile = "valid.txt";
    public const string TrainTasksFile = "tasks_train.jsonl";
    public const string TestTasksFile = "tasks_test.jsonl";

    private static readonly JsonSerializerOptions JsonLine = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The evaluated task kinds: "copy", "reverse".</summary>
    public static IReadOnlyList<string> Kinds => TaskKinds.Names;

    /// <summary>Kinds written into the pre-training text only (never SFT or test tasks): "lookup", "sort".</summary>
    public static IReadOnlyList<string> ScaffoldKinds { get; } = TaskKinds.Scaffolds.Select(k => k.Name).ToArray();

    /// <summary>The first <paramref name="count"/> stories of the seed's story stream (a larger count extends, never changes, a smaller one).</summary>
    public static IEnumerable<string> Stories(int count, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return StoryStream(SeededRandom.Derive(seed, "stories")).Take(count);
    }

    /// <summary>The first <paramref name="count"/> tasks of one kind from the seed's stream; may repeat a task.</summary>
    /// <exception cref="DllmException">Unknown kind.</exception>
    public static IEnumerable<DemoTask> Tasks(string kind, int count, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return TaskKinds.Stream(kind, seed).Take(count);
    }

    /// <summary>
    /// Writes train.txt and valid.txt (stories, task documents and the scaffold kinds' documents, shuffled together),
    /// tasks_train.jsonl (the evaluated kinds' tasks
    /// in train.txt) and tasks_test.jsonl (distinct held-out tasks whose prompts occur in neither text file).
    /// Each file is replaced atomically.
    /// </summary>
    /// <exception cref="DllmException">Invalid options, or a file cannot be written.</exception>
    public static DemoCorpusSummary Write(string directory, DemoCorpusOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        List<DemoTask> test = HeldOutTasks(options);
        var testPrompts = test.Select(t => t.Prompt).ToHashSet(StringComparer.Ordinal);
        long trainSeed = unchecked((long)SeededRandom.Derive(options.Seed, "train"));
        var documents = Stories(options.Stories, options.Seed).Select(s => new Document(s, null)).ToList();
        foreach (string kind in Kinds)
            documents.AddRange(TaskKinds.Stream(kind, trainSeed, options.Lengths)
                .Where(t => !testPrompts.Contains(t.Prompt))
                .Take(options.TasksPerKind)
                .Select(t => new Document(t.Document, t)));
        foreach (ITaskKind scaffold in options.Scaffolds ? TaskKinds.Scaffolds : [])
            documents.AddRange(TaskKinds.Stream(scaffold.Name, trainSeed).Take(options.TasksPerKind).Select(t => new Document(t.Document, null, Scaffold: true)));

        new SeededRandom(SeededRandom.Derive(options.Seed, "split")).Shuffle(documents);
        int validCount = (int)Math.Round(documents.Count * options.ValidationFraction);
        List<Document> valid = documents[..validCount], train = documents[validCount..];
        HeldOutCheck.Verify(documents.Select(d => d.Text), test);

        Directory.CreateDirectory(directory);
        long trainBytes = WriteText(Path.Combine(directory, TrainFile), train);
        long validBytes = WriteText(Path.Combine(directory, ValidFile), valid);
        List<DemoTask> trainTasks = train.Where(d => d.Task is not null).Select(d => d.Task!).ToList();
        WriteTasks(Path.Combine(directory, TrainTasksFile), trainTasks);
        WriteTasks(Path.Combine(directory, TestTasksFile), test);

        return new DemoCorpusSummary(
            TrainDocuments: train.Count,
            ValidDocuments: valid.Count,
            TrainStories: train.Count(d => d.Task is null && !d.Scaffold),
            TrainTasks: trainTasks.Count,
            ValidTasks: valid.Count(d => d.Task is not null),
            TestTasks: test.Count,
            TrainBytes: trainBytes,
            ValidBytes: validBytes);
    }

    /// <summary>The documents of a file in the TinyStories layout, in order.</summary>
    public static List<string> ParseDocuments(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var documents = new List<string>();
        var lines = new List<string>();
        foreach (string line in text.Split('\n'))
        {
            if (line != DocumentSeparator)
            {
                lines.Add(line);
                continue;
            }
            documents.Add(string.Join('\n', lines));
            lines.Clear();
        }
        // After the last separator there is only the empty rest of the final newline, unless the file is unterminated.
        if (lines is not ([] or [""])) documents.Add(string.Join('\n', lines));
        return documents;
    }

    /// <summary>Distinct tasks per kind from their own stream, so no training draw can shift them.</summary>
    private static List<DemoTask> HeldOutTasks(DemoCorpusOptions options)
    {
        long seed = unchecked((long)SeededRandom.Derive(options.Seed, "test"));
        var tasks = new List<DemoTask>();
        foreach (string kind in Kinds)
        {
            var prompts = new HashSet<string>(StringComparer.Ordinal);
            // Every kind has far more than a million distinct prompts, so this many draws is never the limit in practice.
            foreach (DemoTask task in TaskKinds.Stream(kind, seed, options.Lengths).Take(100 * options.TestTasksPerKind + 100))
            {
                if (prompts.Count == options.TestTasksPerKind) break;
                if (prompts.Add(task.Prompt)) tasks.Add(task);
            }
            if (prompts.Count < options.TestTasksPerKind)
                throw new DllmException($"demo corpus: cannot draw {options.TestTasksPerKind} distinct {kind} test tasks");
        }
        return tasks;
    }

    private static IEnumerable<string> StoryStream(ulong seed)
    {
        var writer = new StoryWriter(new SeededRandom(seed));
        while (true) yield return writer.Next();
    }

    private static long WriteText(string path, List<Document> documents)
    {
        var text = new StringBuilder();
        foreach (Document document in documents) text.Append(document.Text).Append('\n').Append(DocumentSeparator).Append('\n');
        string content = text.ToString();
        AtomicFile.WriteAllText(path, content);
        return Encoding.UTF8.GetByteCount(content);
    }

    private static void WriteTasks(string path, List<DemoTask> tasks)
    {
        var text = new StringBuilder();
        foreach (DemoTask task in tasks)
        {
            var line = new JsonObject { ["kind"] = task.Kind, ["prompt"] = task.Prompt, ["answer"] = task.Answer };
            text.Append(line.ToJsonString(JsonLine)).Append('\n');
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    private sealed record Document(string Text, DemoTask? Task, bool Scaffold = false);
}
