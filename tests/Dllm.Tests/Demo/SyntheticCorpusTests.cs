using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dllm.Demo;

namespace Dllm.Tests.Demo;

[Collection(DemoCollection.Name)]
public sealed class SyntheticCorpusTests(DemoFixture data)
{
    public static TheoryData<string> Kinds => new(SyntheticCorpus.Kinds);

    /// <summary>Evaluated and scaffold kinds: every document the corpus writes must be right.</summary>
    public static TheoryData<string> AllKinds => new(SyntheticCorpus.Kinds.Concat(SyntheticCorpus.ScaffoldKinds));

    [Fact]
    public void KindsAreTheDocumentedOnes()
    {
        Assert.Equal(["copy", "reverse"], SyntheticCorpus.Kinds);
        Assert.Equal(["lookup", "sort"], SyntheticCorpus.ScaffoldKinds);
    }

    [Fact]
    public void TheSameSeedGivesTheSameStoriesAndTasks()
    {
        Assert.Equal(SyntheticCorpus.Stories(200, 5), SyntheticCorpus.Stories(200, 5));
        foreach (string kind in SyntheticCorpus.Kinds)
            Assert.Equal(SyntheticCorpus.Tasks(kind, 200, 5), SyntheticCorpus.Tasks(kind, 200, 5));
    }

    [Fact]
    public void AnotherSeedGivesOtherStoriesAndTasks()
    {
        int shared = SyntheticCorpus.Stories(200, 5).Intersect(SyntheticCorpus.Stories(200, 6)).Count();
        Assert.True(shared < 5, $"{shared} of 200 stories are the same for seeds 5 and 6");
        foreach (string kind in SyntheticCorpus.Kinds)
            Assert.NotEqual(SyntheticCorpus.Tasks(kind, 50, 5), SyntheticCorpus.Tasks(kind, 50, 6));
    }

    [Fact]
    public void EnumeratingTwiceGivesTheSameItemsAndALongerRunExtendsAShorterOne()
    {
        IEnumerable<string> stories = SyntheticCorpus.Stories(30, 5);
        Assert.Equal(stories.ToList(), stories.ToList());
        Assert.Equal(stories, SyntheticCorpus.Stories(60, 5).Take(30));
        IEnumerable<DemoTask> tasks = SyntheticCorpus.Tasks("lookup", 30, 5);
        Assert.Equal(tasks.ToList(), tasks.ToList());
    }

    [Fact]
    public void WrittenFilesAreByteIdenticalForTheSameSeedAndDifferForAnother()
    {
        using var first = new TempDirectory();
        using var second = new TempDirectory();
        using var other = new TempDirectory();
        SyntheticCorpus.Write(first.Path, DemoFixture.Options);
        SyntheticCorpus.Write(second.Path, DemoFixture.Options);
        SyntheticCorpus.Write(other.Path, DemoFixture.Options with { Seed = 100 });
        string[] files = [SyntheticCorpus.TrainFile, SyntheticCorpus.ValidFile, SyntheticCorpus.TrainTasksFile, SyntheticCorpus.TestTasksFile];
        Assert.Equal(files.Order(StringComparer.Ordinal), Directory.GetFiles(first.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (string file in files)
        {
            Assert.Equal(File.ReadAllBytes(first.File(file)), File.ReadAllBytes(second.File(file)));
            Assert.NotEqual(File.ReadAllBytes(first.File(file)), File.ReadAllBytes(other.File(file)));
        }
    }

    [Fact]
    public void TheSeedsTextIsPinned()
    {
        // The demo's measured results (the AR copy transition by step 1000 with seed 1234, every table in
        // docs/benchmarks.md) rest on these exact bytes; the pin was taken before lookup became a scaffold and
        // still holds after. A change here is a change of the demo's data: re-measure the demo, then re-pin.
        using var dir = new TempDirectory();
        SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(Stories: 200, TasksPerKind: 300, TestTasksPerKind: 20, Seed: 1234));
        Assert.Equal("9febba583675a106fdabdff1d32dda383720dfddd5a67d6c4786fff3ff67db19", Sha256(dir.File(SyntheticCorpus.TrainFile)));
        Assert.Equal("79e10625600e49227ed264295a3e09c3900fadb6d1078ea0efc2d6169c202ff4", Sha256(dir.File(SyntheticCorpus.ValidFile)));

        static string Sha256(string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
    }

    [Theory]
    [MemberData(nameof(AllKinds))]
    public void EveryAnswerIsRightWhenRecomputedFromThePromptText(string kind)
    {
        List<DemoTask> tasks = SyntheticCorpus.Tasks(kind, 2000, 17).ToList();
        Assert.All(tasks, t => Assert.Equal(kind, t.Kind));
        Assert.All(tasks, t => Assert.Equal(Solve(t.Prompt), t.Answer));
        Assert.True(tasks.Select(t => t.Prompt).Distinct().Count() > 1900, "tasks repeat too often");
    }

    [Theory]
    [InlineData("copy", 8, 24)]
    [InlineData("reverse", 8, 24)]
    [InlineData("lookup", 12, 36)]
    public void AnswersAreLongAndSpanTheDocumentedLengths(string kind, int shortest, int longest)
    {
        // Items are one token each (lookup: key, "=" and digit), so these are answer lengths in tokens too.
        var lengths = SyntheticCorpus.Tasks(kind, 2000, 3).Select(t => (kind == "lookup" ? 3 : 1) * t.Answer.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length).ToHashSet();
        Assert.Equal(shortest, lengths.Min());
        Assert.Equal(longest, lengths.Max());
    }

    [Fact]
    public void ListLengthsAndScaffoldsAreOptionsOfTheCorpus()
    {
        // The quick demo's corpus: short lists and no scaffolds, so a small AR model learns to copy within its budget.
        using var dir = new TempDirectory();
        SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(Stories: 20, TasksPerKind: 400, TestTasksPerKind: 30, Seed: 5, MinItems: 3, MaxItems: 6, Scaffolds: false));
        List<DemoTask> tasks = ReadTasks(dir.File(SyntheticCorpus.TrainTasksFile)).Concat(ReadTasks(dir.File(SyntheticCorpus.TestTasksFile))).ToList();
        var lengths = tasks.Select(t => t.Answer.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length).ToHashSet();
        Assert.Equal(3, lengths.Min());
        Assert.Equal(6, lengths.Max());
        Assert.All(tasks, t => Assert.Equal(Solve(t.Prompt), t.Answer));
        var documents = SyntheticCorpus.ParseDocuments(File.ReadAllText(dir.File(SyntheticCorpus.TrainFile)));
        Assert.DoesNotContain(documents, IsScaffold);
        Assert.Contains(documents, d => !IsStory(d));

        Assert.Throws<DllmException>(() => SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(MinItems: 1)));
        Assert.Throws<DllmException>(() => SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(MinItems: 9, MaxItems: 8)));
        Assert.Throws<DllmException>(() => SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(MaxItems: 33)));
    }

    [Fact]
    public void HeldOutTasksNeverOccurInTheTrainingText()
    {
        using var dir = new TempDirectory();
        var options = new DemoCorpusOptions(Stories: 50, TasksPerKind: 3000, TestTasksPerKind: 200, Seed: 7);
        SyntheticCorpus.Write(dir.Path, options);
        string text = File.ReadAllText(dir.File(SyntheticCorpus.TrainFile)) + File.ReadAllText(dir.File(SyntheticCorpus.ValidFile));
        List<DemoTask> test = ReadTasks(dir.File(SyntheticCorpus.TestTasksFile));
        List<DemoTask> train = ReadTasks(dir.File(SyntheticCorpus.TrainTasksFile));

        Assert.Equal(SyntheticCorpus.Kinds.Count * options.TestTasksPerKind, test.Count);
        Assert.Equal(test.Count, test.Select(t => t.Prompt).Distinct().Count());
        foreach (DemoTask task in test)
        {
            Assert.Equal(Solve(task.Prompt), task.Answer);
            Assert.DoesNotContain(task.Prompt, text, StringComparison.Ordinal);
        }
        Assert.Empty(train.Select(t => t.Prompt).Intersect(test.Select(t => t.Prompt)));
    }

    [Fact]
    public void TheLeakCheckInWriteCatchesAPromptInsideAnyDocument()
    {
        DemoTask task = new("copy", "Copy: red cat ->", " red cat");
        HeldOutCheck.Verify(["Copy: red cats -> red cats", "Copy: red cat sun -> red cat sun", "a story"], [task]);
        Assert.Throws<InvalidOperationException>(() => HeldOutCheck.Verify(["a story", "x Copy: red cat -> red cat"], [task]));
    }

    [Fact]
    public void FilesHoldTheExpectedDocuments()
    {
        DemoCorpusOptions options = DemoFixture.Options;
        DemoCorpusSummary summary = data.Summary;
        List<string> train = data.TrainDocuments, valid = SyntheticCorpus.ParseDocuments(data.ValidText);
        int total = options.Stories + (SyntheticCorpus.Kinds.Count + SyntheticCorpus.ScaffoldKinds.Count) * options.TasksPerKind;

        // Counted independently of the parser: one separator line per document, and the file ends with one.
        Assert.Equal(train.Count, data.TrainText.Split('\n').Count(line => line == SyntheticCorpus.DocumentSeparator));
        Assert.EndsWith("\n" + SyntheticCorpus.DocumentSeparator + "\n", data.TrainText, StringComparison.Ordinal);
        Assert.Equal(summary.TrainDocuments, train.Count);
        Assert.Equal(summary.ValidDocuments, valid.Count);
        Assert.Equal(total, train.Count + valid.Count);
        Assert.Equal((int)Math.Round(total * options.ValidationFraction), valid.Count);
        Assert.Equal(options.Stories, train.Concat(valid).Count(IsStory));
        Assert.Equal(summary.TrainStories, train.Count(IsStory));
        Assert.Equal(summary.ValidTasks, valid.Count(d => !IsStory(d) && !IsScaffold(d)));
        // The scaffolds (lookup tables, sorting letters) are pre-training text only: TasksPerKind of each, each one correct.
        Assert.Equal(options.TasksPerKind * SyntheticCorpus.ScaffoldKinds.Count, train.Concat(valid).Count(IsScaffold));
        foreach (string document in train.Where(IsScaffold))
        {
            int arrow = document.IndexOf(" ->", StringComparison.Ordinal) + 3;
            Assert.Equal(Solve(document[..arrow]), document[arrow..]);
        }
        Assert.Contains(train, d => d.Contains('\n')); // some stories have paragraphs, and they survive the layout
        Assert.Equal(new FileInfo(data.CorpusFile(SyntheticCorpus.TrainFile)).Length, summary.TrainBytes);
        Assert.Equal(new FileInfo(data.CorpusFile(SyntheticCorpus.ValidFile)).Length, summary.ValidBytes);

        // tasks_train.jsonl lists exactly the task documents of train.txt, in file order.
        List<DemoTask> tasks = ReadTasks(data.CorpusFile(SyntheticCorpus.TrainTasksFile));
        Assert.Equal(summary.TrainTasks, tasks.Count);
        Assert.Equal(train.Where(d => !IsStory(d) && !IsScaffold(d)), tasks.Select(t => t.Prompt + t.Answer));
        Assert.DoesNotContain(tasks, t => IsScaffold(t.Prompt));
        Assert.Equal(summary.TestTasks, ReadTasks(data.CorpusFile(SyntheticCorpus.TestTasksFile)).Count);
    }

    [Fact]
    public void ParseDocumentsKeepsBlankAndLeadingLinesInsideDocuments()
    {
        const string sep = SyntheticCorpus.DocumentSeparator;
        Assert.Equal(["a\n\nb", "\nc", ""], SyntheticCorpus.ParseDocuments($"a\n\nb\n{sep}\n\nc\n{sep}\n\n{sep}\n"));
        Assert.Equal(["a", "tail"], SyntheticCorpus.ParseDocuments($"a\n{sep}\ntail"));
        Assert.Empty(SyntheticCorpus.ParseDocuments(""));
    }

    [Fact]
    public void StoriesArePlainAsciiProseOfFourToEightSentences()
    {
        foreach (string story in SyntheticCorpus.Stories(1000, 21))
        {
            Assert.All(story, c => Assert.True(c == '\n' || c is >= ' ' and <= '~', $"unexpected char U+{(int)c:X4} in: {story}"));
            int sentences = Regex.Count(story, """[.!?]"?(?=\s|$)""");
            Assert.InRange(sentences, 4, 8);
            Assert.Matches(@"^[A-Z]", story);
            Assert.Matches("""[.!?]"?$""", story);
            Assert.DoesNotMatch("""[.!?]"? [a-z]""", story); // every sentence starts with a capital
            Assert.DoesNotContain(":", story);
            Assert.DoesNotContain("{", story); // no unfilled template slot
            Assert.DoesNotContain(SyntheticCorpus.DocumentSeparator, story);
        }
    }

    [Fact]
    public void StoriesUseTheHeroesPronouns()
    {
        // The hero is the first character named. Unless someone of the other sex shows up, only the hero's pronouns may occur.
        string[] male = [.. StoryWords.BoyNames, "Dad", "Grandpa", "brother", "old man", "owl"];
        string[] female = [.. StoryWords.GirlNames, "Mom", "Grandma", "sister", "lady", "dog"];
        int checkedStories = 0, withPronoun = 0;
        foreach (string story in SyntheticCorpus.Stories(1000, 23))
        {
            string hero = Regex.Match(story, $@"\b({string.Join('|', StoryWords.GirlNames.Concat(StoryWords.BoyNames))})\b").Value;
            bool girl = StoryWords.GirlNames.Contains(hero);
            // After these verbs the object is always the hero, whoever else is in the story.
            foreach (Match m in Regex.Matches(story, @"\b(saw|heard|helped|showed|gave|lifted|with) (him|her)\b"))
                Assert.True(m.Groups[2].Value == (girl ? "her" : "him"), $"'{m.Value}' about {hero} in: {story}");
            string[] others = (girl ? male : female).Where(w => w != hero).ToArray();
            if (others.Any(w => Regex.IsMatch(story, $@"\b{w}\b", RegexOptions.IgnoreCase))) continue;
            Assert.DoesNotMatch(girl ? @"(?i)\b(he|him|his)\b" : @"(?i)\b(she|her|hers)\b", story);
            if (Regex.IsMatch(story, girl ? @"(?i)\b(she|her)\b" : @"(?i)\b(he|him|his)\b")) withPronoun++;
            checkedStories++;
        }
        Assert.True(checkedStories > 200, $"only {checkedStories} stories could be checked");
        Assert.True(withPronoun > checkedStories * 3 / 4, $"only {withPronoun} of {checkedStories} stories refer to the hero by pronoun");
    }

    [Fact]
    public void StoriesAreVariedNotRepeated()
    {
        List<string> stories = SyntheticCorpus.Stories(3000, 29).ToList();
        Assert.True(stories.Distinct().Count() > 2990, "stories repeat");
        int words = stories.SelectMany(s => Regex.Matches(s, "[A-Za-z]+").Select(m => m.Value)).Distinct().Count();
        Assert.True(words > 350, $"only {words} distinct words");
        // Every problem of every goal gets used; its fix line is never dropped, so look for that.
        foreach (Obstacle obstacle in StoryWords.Goals.SelectMany(g => g.Obstacles))
        {
            string pattern = string.Join(".+?", Regex.Split(obstacle.Fix, @"\{[A-Z]+\}").Select(Regex.Escape));
            Assert.True(stories.Any(s => Regex.IsMatch(s, pattern)), $"no story uses the fix '{obstacle.Fix}'");
        }
    }

    [Fact]
    public void BadOptionsAndUnknownKindsAreUserErrors()
    {
        using var dir = new TempDirectory();
        Assert.Throws<DllmException>(() => SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(Stories: -1)));
        Assert.Throws<DllmException>(() => SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(ValidationFraction: 1)));
        Assert.Throws<DllmException>(() => SyntheticCorpus.Write(dir.Path, new DemoCorpusOptions(ValidationFraction: double.NaN)));
        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Throws<DllmException>(() => SyntheticCorpus.Tasks("division", 1, 1));
    }

    /// <summary>The answer, worked out from the prompt text alone.</summary>
    private static string Solve(string prompt)
    {
        Match m;
        if ((m = Regex.Match(prompt, @"^(Copy|Reverse): ([a-z]+(?: [a-z]+){1,31}) ->$")).Success)
        {
            string[] words = m.Groups[2].Value.Split(' ');
            Assert.Equal(words.Length, words.Distinct().Count());
            return " " + string.Join(' ', m.Groups[1].Value == "Copy" ? words : words.Reverse());
        }
        if ((m = Regex.Match(prompt, @"^Table: ([a-z]+=\d(?: [a-z]+=\d){3,7})\. Find: ([a-z]+(?: [a-z]+){3,11}) ->$")).Success)
        {
            var values = m.Groups[1].Value.Split(' ').ToDictionary(p => p[..^2], p => p[^1..]); // throws on a repeated key
            return " " + string.Join(' ', m.Groups[2].Value.Split(' ').Select(k => k + "=" + values[k]));
        }
        if ((m = Regex.Match(prompt, @"^Sort: ([a-z](?: [a-z]){5,13}) ->$")).Success)
        {
            string[] letters = m.Groups[1].Value.Split(' ');
            Assert.Equal(letters.Length, letters.Distinct().Count());
            return " " + string.Join(' ', letters.Order(StringComparer.Ordinal));
        }
        throw new Xunit.Sdk.XunitException($"prompt in no known format: '{prompt}'");
    }

    private static bool IsStory(string document) => !Regex.IsMatch(document, "^(Copy|Reverse|Table|Sort): ");

    private static bool IsScaffold(string document) => Regex.IsMatch(document, "^(Table|Sort): ");

    private static List<DemoTask> ReadTasks(string path) =>
        File.ReadAllLines(path).Select(line =>
        {
            JsonObject obj = JsonNode.Parse(line)!.AsObject();
            Assert.Equal(["kind", "prompt", "answer"], obj.Select(p => p.Key));
            return new DemoTask(obj["kind"]!.GetValue<string>(), obj["prompt"]!.GetValue<string>(), obj["answer"]!.GetValue<string>());
        }).ToList();
}
