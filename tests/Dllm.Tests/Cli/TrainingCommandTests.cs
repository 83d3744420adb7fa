using System.Text.Json.Nodes;
using Dllm.Runtime;

namespace Dllm.Tests.Cli;

/// <summary>convert, eval, merge and diffusion generate, end to end through the CLI on a tiny model.</summary>
public class TrainingCommandTests
{
    public TrainingCommandTests() => TorchRuntime.EnsureLoaded();

    private static string Corpus(TempDirectory dir)
    {
        var rng = new Random(4);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "ball"];
        var docs = Enumerable.Range(0, 300).Select(_ => string.Join(' ', Enumerable.Range(0, 8 + rng.Next(12)).Select(_ => words[rng.Next(words.Length)])) + ".");
        var path = dir.File("corpus.txt");
        File.WriteAllText(path, string.Concat(docs.Select(d => d + "\n<|endoftext|>\n")));
        return path;
    }

    [Fact]
    public void ConvertEvalMergeAndDiffusionGenerateWorkTogether()
    {
        using var dir = new TempDirectory();
        var ar = TinyCheckpoints.Write("llama", dir.File("ar"));
        var data = Corpus(dir);
        var dlm = dir.File("dlm");
        var convert = CliRunner.InProcess("convert", "--model", ar, "--data", data, "--out", dlm, "--steps", "12", "--seq-len", "32",
            "--batch-size", "4", "--block-size", "4", "--lr", "3e-3", "--eval-every", "4", "--checkpoint-every", "4", "--keep-last", "0");
        Assert.True(convert.ExitCode == 0, convert.Stderr + convert.Stdout);
        Assert.Contains("block schedule: B=1", convert.Stdout);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dlm, "config.json")))!;
        Assert.Equal(4, config["dllm"]!["block_size"]!.GetValue<int>());
        var maskId = config["mask_token_id"]!.GetValue<int>();
        Assert.Equal(267, maskId);

        var metrics = File.ReadAllLines(dlm + "-run/metrics.jsonl").Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(12, metrics.Count);
        var sizes = metrics.Select(m => m["block_size"]!.GetValue<int>()).ToList();
        Assert.Equal(new[] { 1, 4, 16, 32, 4 }, sizes.Where((b, i) => i == 0 || sizes[i - 1] != b));   // the WSD phases in order

        var eval = CliRunner.InProcess("eval", "--model", dlm, "--data", data, "--samples", "2", "--max-docs", "20", "--json");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        var nelbo = eval.Json["nelbo_per_token"]!.GetValue<double>();
        Assert.Equal(Math.Exp(nelbo), eval.Json["ppl"]!.GetValue<double>(), 6);
        var again = CliRunner.InProcess("eval", "--model", dlm, "--data", data, "--samples", "2", "--max-docs", "20", "--json");
        Assert.Equal(nelbo, again.Json["nelbo_per_token"]!.GetValue<double>());   // fixed seeds
        var ar_eval = CliRunner.InProcess("eval", "--model", dlm, "--data", data, "--mode", "ar", "--max-docs", "20", "--json");
        Assert.True(ar_eval.Json["nll_per_token"]!.GetValue<double>() > 0);

        var merged = dir.File("merged");
        var merge = CliRunner.InProcess("merge", dlm + "-run", "--top-k", "2", "--out", merged);
        Assert.True(merge.ExitCode == 0, merge.Stderr);
        Assert.True(File.Exists(Path.Combine(merged, "model.safetensors")));

        var gen = CliRunner.InProcess("generate", "--model", dlm, "--prompt", "the cat", "-n", "8", "--threshold", "0.0", "--json");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        Assert.Equal("diffusion", gen.Json["mode"]!.GetValue<string>());
        // Threshold 0 decodes each block in one forward: the prompt's block, then one more block of 4.
        Assert.True(gen.Json["forwards"]!.GetValue<int>() <= 3);
    }

    [Fact]
    public void AnExistingRunIsNotOverwrittenWithoutResume()
    {
        using var dir = new TempDirectory();
        var ar = TinyCheckpoints.Write("qwen2", dir.File("ar"));
        var data = Corpus(dir);
        string[] args = ["convert", "--model", ar, "--data", data, "--out", dir.File("dlm"), "--steps", "6", "--seq-len", "32", "--batch-size", "2", "--block-size", "4"];
        Assert.Equal(0, CliRunner.InProcess(args).ExitCode);
        var second = CliRunner.InProcess(args);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("--resume", second.Stderr);
        var resumed = CliRunner.InProcess([.. args, "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
    }
}
