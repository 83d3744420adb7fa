using System.Text.Json.Nodes;
using Dllm.Runtime;

namespace Dllm.Tests.Cli;

/// <summary>
/// Options that used to crash (exit 134 with a stack trace), hang or train on NaN: each is now one line on stderr
/// and exit 1, before any model loads or any step runs (no run folder appears).
/// </summary>
public class BadOptionTests
{
    public BadOptionTests() => TorchRuntime.EnsureLoaded();

    private static string Corpus(TempDirectory dir)
    {
        var path = dir.File("corpus.txt");
        File.WriteAllLines(path, Enumerable.Range(0, 40).Select(i => $"the cat {i % 7} sat on the mat and the dog ran {i % 5} times."));
        return path;
    }

    private static string Tasks(TempDirectory dir)
    {
        var path = dir.File("tasks.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 3).Select(i => new JsonObject { ["prompt"] = $"Compute: {i} + 1 =", ["answer"] = $" {i + 1}" }.ToJsonString()));
        return path;
    }

    private static CliRunner.Run Run(TempDirectory dir, params string[] args)
    {
        string? model = null;
        string Model() => model ??= TinyCheckpoints.Write("llama", dir.File("m"));
        var resolved = args.Select(a => a switch
        {
            "{model}" => Model(),
            "{data}" => Corpus(dir),
            "{tasks}" => Tasks(dir),
            "{out}" => dir.File("out"),
            _ => a,
        }).ToArray();
        return CliRunner.InProcess(resolved);
    }

    private static void AssertOneLine(CliRunner.Run run, string fragment)
    {
        Assert.True(run.ExitCode == 1, $"exit {run.ExitCode}: {run.Stderr}{run.Stdout}");
        Assert.Contains(fragment, run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    private static readonly string[] Convert = ["convert", "--model", "{model}", "--data", "{data}", "--out", "{out}", "--seq-len", "32", "--batch-size", "2"];

    public static TheoryData<string, string[]> Cases => new()
    {
        { "--checkpoint-every must be positive", [.. Convert, "--checkpoint-every", "0"] },
        { "--eval-every must be positive", [.. Convert, "--eval-every", "0"] },
        { "--lr must be a positive number, got NaN", [.. Convert, "--lr", "NaN"] },
        { "--lr must be a positive number, got ", [.. Convert, "--lr", "Infinity"] },
        { "--clip must be 0 (off) or a positive number", [.. Convert, "--clip", "-1"] },
        { "--keep-last must be 0 (keep all) or positive", [.. Convert, "--keep-last", "-2"] },
        { "--embedding-noise must be 0 (off) or a positive number", [.. Convert, "--embedding-noise", "-0.5"] },
        { "--seq-len must be at least 2", ["convert", "--model", "{model}", "--data", "{data}", "--out", "{out}", "--seq-len", "0"] },
        { "--block-size must be positive", ["eval", "--model", "{model}", "--data", "{data}", "--block-size", "0"] },
        { "--batch must be positive", ["eval", "--model", "{model}", "--task", "{tasks}", "--batch", "0"] },
        { "--samples must be positive", ["eval", "--model", "{model}", "--data", "{data}", "--samples", "0"] },
        { "temperature must be a finite number", ["generate", "--model", "{model}", "-p", "x", "--temperature", "Infinity"] },
        { "temperature must be a finite number", ["chat", "--model", "{model}", "--temperature", "Infinity"] },
        { "is not an IP address", ["serve", "--model", "{model}", "--host", "not-a-host", "--port", "0"] },
        { "8.8.8.8 is not an address of this machine", ["serve", "--model", "{model}", "--host", "8.8.8.8", "--port", "0"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ABadOptionIsOneLineAndNothingRuns(string fragment, string[] args)
    {
        using var dir = new TempDirectory();
        AssertOneLine(Run(dir, args), fragment);
        Assert.False(Directory.Exists(dir.File("out-run")), "a run folder was created");
    }

    [Theory]
    [InlineData("2")]
    [InlineData("3")]
    [InlineData("4")]
    public void TooFewStepsGiveTheSameMessageWithTheRealMinimum(string steps)
    {
        using var dir = new TempDirectory();
        var run = Run(dir, [.. Convert, "--steps", steps]);
        // L = 32 warms up through block sizes 1, 4 and 16, then needs a stable and a decay step.
        AssertOneLine(run, $"--steps {steps} is too few for the WSD block schedule at sequence length 32: it needs at least 5");
    }

    [Fact]
    public void TheMinimumStepCountTrains()
    {
        using var dir = new TempDirectory();
        var run = Run(dir, [.. Convert, "--steps", "5", "--checkpoint-every", "5"]);
        Assert.True(run.ExitCode == 0, run.Stderr + run.Stdout);
    }

    [Fact]
    public void DataAndOutputAreCheckedBeforeTheStepCount()
    {
        using var dir = new TempDirectory();
        AssertOneLine(Run(dir, "convert", "--model", "{model}", "--data", dir.File("missing.txt"), "--out", "{out}", "--steps", "2"), "data file not found");
        File.WriteAllText(dir.File("out"), "a file");
        AssertOneLine(Run(dir, [.. Convert, "--steps", "2"]), "is a file");
    }

    [Fact]
    public void AnOutputThatIsAFileOrANonEmptyFolderIsRefusedBeforeTraining()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("out"), "precious");
        var file = Run(dir, [.. Convert, "--steps", "6"]);
        AssertOneLine(file, "is a file");
        Assert.Equal("precious", File.ReadAllText(dir.File("out")));
        File.Delete(dir.File("out"));

        Directory.CreateDirectory(dir.File("out"));
        File.WriteAllText(dir.File("out/notes.txt"), "precious");
        var folder = Run(dir, [.. Convert, "--steps", "6"]);
        AssertOneLine(folder, "is not empty (it holds 'notes.txt')");
        Assert.False(Directory.Exists(dir.File("out-run")), "training started before the output was checked");
        Assert.Equal("precious", File.ReadAllText(dir.File("out/notes.txt")));
    }

    [Fact]
    public void ATinyTemperatureDecodesGreedilyInsteadOfFailing()
    {
        using var dir = new TempDirectory();
        var greedy = Run(dir, "generate", "--model", "{model}", "-p", "hello", "-n", "6", "--json");
        var tiny = CliRunner.InProcess("generate", "--model", dir.File("m"), "-p", "hello", "-n", "6", "--json", "--temperature", "1e-300");
        Assert.True(tiny.ExitCode == 0, tiny.Stderr);
        Assert.Equal(greedy.Json["token_ids"]!.ToJsonString(), tiny.Json["token_ids"]!.ToJsonString());
    }
}
