using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Serving;

namespace Dllm.Tests.Cli;

/// <summary>--editing-threshold / --max-post-steps reach the decoder from generate, and the server's fields from requests.</summary>
public class EditingOptionsCliTests
{
    public EditingOptionsCliTests() => TorchRuntime.EnsureLoaded();

    private static string TinyDllm(TempDirectory dir)
    {
        TinyCheckpoints.Write("llada2", dir.File("raw"));
        using var raw = LoadedModel.Load(dir.File("raw"));
        raw.EnsureMaskToken();
        raw.Save(dir.File("dllm"));
        return dir.File("dllm");
    }

    [Fact]
    public void GenerateDecodesWithTheEditingSettingsItWasGiven()
    {
        using var dir = new TempDirectory();
        var path = TinyDllm(dir);
        var run = CliRunner.InProcess("generate", "--model", path, "--prompt", "hello", "-n", "9", "--block-size", "4", "--threshold", "0.5",
            "--editing-threshold", "0.2", "--max-post-steps", "3", "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var loaded = LoadedModel.Load(path);
        var expected = TextGeneration.Generate(loaded, new GenerationRequest
        {
            Prompt = "hello",
            Options = new DecodeOptions { MaxNewTokens = 9 },
            Block = new BlockDecodeOptions(4, 0.5, Editing: new EditingOptions(0.2, 3)),
        });
        Assert.Equal(expected.TokenIds, run.Json["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray());
        Assert.Equal(expected.Forwards, run.Json["forwards"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("--editing-threshold", "generate", "--max-post-steps", "4")]
    [InlineData("editing threshold", "generate", "--editing-threshold", "1.5")]
    [InlineData("post steps", "generate", "--editing-threshold", "0.5", "--max-post-steps", "-2")]
    [InlineData("--editing-threshold", "eval", "--task", "x.jsonl", "--max-post-steps", "4")]
    public void BadEditingOptionsAreOneClearLine(string fragment, string verb, params string[] args)
    {
        using var dir = new TempDirectory();
        var path = TinyDllm(dir);
        var task = dir.File("x.jsonl");
        File.WriteAllText(task, "{\"prompt\": \"a\", \"answer\": \"b\"}\n");
        var full = new[] { verb, "--model", path }.Concat(verb == "generate" ? ["-p", "x"] : []).Concat(args.Select(a => a == "x.jsonl" ? task : a)).ToArray();
        var run = CliRunner.InProcess(full);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains(fragment, run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void ServerRequestFieldsBecomeTheDecodersEditingOptions()
    {
        using var dir = new TempDirectory();
        using var loaded = LoadedModel.Load(TinyDllm(dir));
        var request = new CompletionSettings { EditingThreshold = 0.4, MaxPostSteps = 2 }.ToRequest(loaded, "hi", true, [], default);
        Assert.Equal(new EditingOptions(0.4, 2), request.Block!.Editing);
        var defaults = new CompletionSettings { EditingThreshold = 0.4 }.ToRequest(loaded, "hi", true, [], default);
        Assert.Equal(new EditingOptions().MaxPostSteps, defaults.Block!.Editing!.MaxPostSteps);
        Assert.Null(new CompletionSettings().ToRequest(loaded, "hi", true, [], default).Block!.Editing);
    }
}
