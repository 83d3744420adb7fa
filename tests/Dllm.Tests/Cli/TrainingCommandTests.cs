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
        // Validation every 4 steps rides on the line of the step it followed; the plot reads it back.
        Assert.Equal(new long[] { 3, 7, 11 }, metrics.Where(m => m["valid_nelbo_b4"] is not null).Select(m => m["step"]!.GetValue<long>()));
        var curve = Dllm.Plots.TrainingCurve.Read(dlm + "-run");
        Assert.Equal("valid_nelbo_b4", curve.ValidationMetric);
        Assert.Equal(new double[] { 4, 8, 12 }, curve.ValidationSteps);
        Assert.Equal(metrics[11]["valid_nelbo_b4"]!.GetValue<double>(), curve.Validation![2]);
        var plot = CliRunner.InProcess("plot", dlm + "-run", "--metric", "valid", "--out", dir.File("valid.png"));
        Assert.True(plot.ExitCode == 0, plot.Stderr);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(dir.File("valid.png"))[..4]);

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
    public void TheBlockSizeAModelWasLastTrainedAtIsWhatEveryVerbRecordsAndDefaultsTo()
    {
        using var dir = new TempDirectory();
        var ar = TinyCheckpoints.Write("llama", dir.File("ar"));
        var data = Corpus(dir);
        // A schedule file whose total (10 steps) differs from --steps and whose last phase is B = 8.
        var schedule = dir.File("schedule.json");
        File.WriteAllText(schedule, """{"phases": [{"steps": 4, "block_size": 1}, {"steps": 3, "block_size": 32}, {"steps": 3, "block_size": 8}]}""");
        var dlm = dir.File("dlm");
        var convert = CliRunner.InProcess("convert", "--model", ar, "--data", data, "--out", dlm, "--schedule", schedule, "--steps", "4000",
            "--seq-len", "32", "--batch-size", "2", "--labels", "shift", "--embedding-noise", "0.2", "--embedding-noise-fraction", "0.5",
            "--checkpoint-every", "3", "--keep-last", "0");
        Assert.True(convert.ExitCode == 0, convert.Stderr + convert.Stdout);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dlm, "config.json")))!;
        Assert.Equal(8, config["dllm"]!["block_size"]!.GetValue<int>());
        Assert.Equal("shift", config["dllm"]!["labels"]!.GetValue<string>());
        // A checkpoint mid-run is a dLLM too, with the labels and the block its last step trained at (steps 0-3 at B = 1,
        // 4-6 at 32 (the sequence length), 7-9 at 8), so eval, generate or a resume read it as what it is.
        foreach (var (step, block) in new[] { (3, 1), (6, 32), (9, 8) })
        {
            var checkpoint = Path.Combine(dlm + "-run", "checkpoints", $"step-{step:D7}");
            var recorded = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "config.json")))!["dllm"]!;
            Assert.Equal((block, "shift"), (recorded["block_size"]!.GetValue<int>(), recorded["labels"]!.GetValue<string>()));
        }
        var midRun = CliRunner.InProcess("eval", "--model", Path.Combine(dlm + "-run", "checkpoints", "step-0000006"), "--data", data,
            "--samples", "1", "--max-docs", "5", "--json");
        Assert.True(midRun.ExitCode == 0, midRun.Stderr);
        Assert.Equal(("diffusion", "shift", 32), (midRun.Json["mode"]!.GetValue<string>(), midRun.Json["labels"]!.GetValue<string>(), midRun.Json["block_size"]!.GetValue<int>()));
        // The noise anneals over half of the file's 10 steps, not half of --steps.
        var noise = File.ReadAllLines(dlm + "-run/metrics.jsonl").Select(l => JsonNode.Parse(l)!["embedding_noise"]!.GetValue<double>()).ToList();
        Assert.Equal(10, noise.Count);
        Assert.Equal(0.2, noise[0], 9);
        Assert.All(noise.Skip(5), n => Assert.Equal(0, n));

        // sft without --block-size trains at (and records) the checkpoint's 8; with --block-size 4 it records 4.
        var tasks = dir.File("tasks.jsonl");
        File.WriteAllLines(tasks, Enumerable.Range(0, 12).Select(i => new JsonObject { ["prompt"] = $"the cat {i}", ["answer"] = " sat on a mat." }.ToJsonString()));
        string Sft(string output, params string[] extra)
        {
            var run = CliRunner.InProcess(["sft", "--model", dlm, "--data", tasks, "--out", dir.File(output), "--steps", "2", "--batch-size", "2", .. extra]);
            Assert.True(run.ExitCode == 0, run.Stderr + run.Stdout);
            return File.ReadAllText(dir.File(output + "/config.json"));
        }
        var inherited = JsonNode.Parse(Sft("sft8"))!["dllm"]!;
        Assert.Equal(8, inherited["block_size"]!.GetValue<int>());
        Assert.Equal("shift", inherited["labels"]!.GetValue<string>());
        Assert.Equal(4, JsonNode.Parse(Sft("sft4", "--block-size", "4"))!["dllm"]!["block_size"]!.GetValue<int>());
        var relabel = CliRunner.InProcess("sft", "--model", dlm, "--data", tasks, "--out", dir.File("bad"), "--steps", "2", "--labels", "same");
        Assert.Equal(1, relabel.ExitCode);
        Assert.Contains("shift labels", relabel.Stderr);

        // The shifted model decodes and is scored at its recorded block size and labels.
        var eval = CliRunner.InProcess("eval", "--model", dir.File("sft4"), "--data", data, "--samples", "1", "--max-docs", "5", "--json");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Equal(4, eval.Json["block_size"]!.GetValue<int>());
        Assert.Equal("shift", eval.Json["labels"]!.GetValue<string>());
        var gen = CliRunner.InProcess("generate", "--model", dir.File("sft4"), "--prompt", "the cat", "-n", "6", "--json");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
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
        // The run finished and wrote its model: resuming has nothing to do and must not overwrite it.
        var written = File.GetLastWriteTimeUtc(Path.Combine(dir.File("dlm"), "model.safetensors"));
        var resumed = CliRunner.InProcess([.. args, "--resume"]);
        Assert.Equal(1, resumed.ExitCode);
        Assert.Contains("nothing to resume", resumed.Stderr);
        Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(dir.File("dlm"), "model.safetensors")));
    }

    [Fact]
    public void ResumingWithAnotherLossIsRefusedByNameAndTheSameSettingsContinue()
    {
        using var dir = new TempDirectory();
        var ar = TinyCheckpoints.Write("llama", dir.File("ar"));
        var data = Corpus(dir);
        var dlm = dir.File("dlm");
        string[] args = ["convert", "--model", ar, "--data", data, "--out", dlm, "--steps", "6", "--seq-len", "32", "--batch-size", "2",
            "--block-size", "4", "--checkpoint-every", "2", "--keep-last", "0"];
        var started = CliRunner.InProcess([.. args, "--weighting", "elbo"]);
        Assert.True(started.ExitCode == 0, started.Stderr);
        Assert.Equal("elbo", JsonNode.Parse(File.ReadAllText(dlm + "-run/train_config.json"))!["weighting"]!.GetValue<string>());
        // As if the run had stopped after its last checkpoint: the model is not written yet.
        Directory.Delete(dlm, recursive: true);

        // The default weighting is flat: resuming without --weighting would train another loss from here on.
        var changed = CliRunner.InProcess([.. args, "--resume"]);
        Assert.Equal(1, changed.ExitCode);
        Assert.Contains("weighting was \"elbo\", now \"flat\"", changed.Stderr);
        Assert.False(Directory.Exists(dlm) && File.Exists(Path.Combine(dlm, "model.safetensors")));
        Assert.Equal("elbo", JsonNode.Parse(File.ReadAllText(dlm + "-run/train_config.json"))!["weighting"]!.GetValue<string>());
        var changedSeed = CliRunner.InProcess([.. args, "--weighting", "elbo", "--seed", "9", "--resume"]);
        Assert.Equal(1, changedSeed.ExitCode);
        Assert.Contains("Seed was", changedSeed.Stderr);

        var plan = File.ReadAllText(dlm + "-run/train_config.json");
        File.WriteAllText(dlm + "-run/train_config.json", plan[..(plan.Length / 2)]);
        var truncated = CliRunner.InProcess([.. args, "--weighting", "elbo", "--resume"]);
        Assert.Equal(1, truncated.ExitCode);
        Assert.Contains("train_config.json is not valid JSON", truncated.Stderr);
        File.WriteAllText(dlm + "-run/train_config.json", plan);

        var same = CliRunner.InProcess([.. args, "--weighting", "elbo", "--eval-every", "1", "--resume"]);   // cadence may change
        Assert.True(same.ExitCode == 0, same.Stderr);
        Assert.True(File.Exists(Path.Combine(dlm, "model.safetensors")));
    }

    [Fact]
    public void ARunStartedBeforeTheWeightingOptionResumesWithTheWeightItUsed()
    {
        // Plans written before --weighting recorded "flat_weight" (false meant 1/t, then the default), and before
        // --parent-weight nothing: those runs had no parent term.
        var started = new JsonObject { ["job"] = "convert", ["labels"] = "same", ["flat_weight"] = false };
        Assert.Empty(Dllm.Training.JobSupport.PlanDifferences(started,
            new JsonObject { ["job"] = "convert", ["labels"] = "same", ["weighting"] = "elbo", ["parent_weight"] = 0.0 }));
        var differences = Dllm.Training.JobSupport.PlanDifferences(started,
            new JsonObject { ["job"] = "convert", ["labels"] = "same", ["weighting"] = "flat", ["parent_weight"] = 1.0 });
        Assert.Equal(["weighting was \"elbo\", now \"flat\"", "parent_weight was 0, now 1"], differences);
        // Older still: no "flat_weight" either, so 1/t.
        Assert.Single(Dllm.Training.JobSupport.PlanDifferences(new JsonObject { ["job"] = "convert" }, new JsonObject { ["job"] = "convert", ["weighting"] = "flat" }));
        // DPO counted the padding before --elbo-padding existed.
        Assert.Equal(["elbo_padding was true, now false"],
            Dllm.Training.JobSupport.PlanDifferences(new JsonObject { ["job"] = "dpo" }, new JsonObject { ["job"] = "dpo", ["elbo_padding"] = false }));
    }

    [Fact]
    public void ConvertPullsTowardsTheParentWhenAskedAndLogsTheDivergence()
    {
        using var dir = new TempDirectory();
        var ar = TinyCheckpoints.Write("llama", dir.File("ar"));
        var data = Corpus(dir);
        var dlm = dir.File("dlm");
        string[] common = ["--data", data, "--steps", "6", "--seq-len", "32", "--batch-size", "2", "--block-size", "4", "--keep-last", "0"];
        var convert = CliRunner.InProcess(["convert", "--model", ar, "--out", dlm, "--parent-weight", "0.5", .. common]);
        Assert.True(convert.ExitCode == 0, convert.Stderr);
        var metrics = File.ReadAllLines(dlm + "-run/metrics.jsonl").Select(l => JsonNode.Parse(l)!).ToList();
        Assert.All(metrics, m => Assert.True(m["parent_kl"]!.GetValue<double>() > 0));
        Assert.Equal(0.5, JsonNode.Parse(File.ReadAllText(dlm + "-run/train_config.json"))!["parent_weight"]!.GetValue<double>());

        // The parent must be an AR model: a dLLM as --model has no next-token distribution to keep.
        var again = CliRunner.InProcess(["convert", "--model", dlm, "--out", dir.File("again"), "--parent-weight", "0.5", .. common]);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already a diffusion LM", again.Stderr);
        var negative = CliRunner.InProcess(["convert", "--model", ar, "--out", dir.File("neg"), "--parent-weight", "-1", .. common]);
        Assert.Equal(1, negative.ExitCode);
        Assert.Contains("--parent-weight", negative.Stderr);
    }

    [Fact]
    public void AnInterruptedPretrainingResumesWithTheSameCommandAndRefusesAnotherSeed()
    {
        using var dir = new TempDirectory();
        var tokenizer = TinyCheckpoints.Write("llama", dir.File("tok"));
        var data = Corpus(dir);
        var ar = dir.File("ar");
        string[] args = ["pretrain", "--tokenizer", tokenizer, "--data", data, "--out", ar, "--hidden", "32", "--layers", "1", "--heads", "2",
            "--kv-heads", "1", "--seq-len", "32", "--steps", "4", "--batch-size", "2", "--checkpoint-every", "2", "--keep-last", "0"];
        var first = CliRunner.InProcess(args);
        Assert.True(first.ExitCode == 0, first.Stderr);
        Directory.Delete(ar, recursive: true);   // as if it had stopped after its last checkpoint
        var otherSeed = CliRunner.InProcess([.. args, "--seed", "5", "--resume"]);
        Assert.Equal(1, otherSeed.ExitCode);
        Assert.Contains("Seed was 0, now 5", otherSeed.Stderr);
        var same = CliRunner.InProcess([.. args, "--resume"]);
        Assert.True(same.ExitCode == 0, same.Stderr);
        Assert.True(File.Exists(Path.Combine(ar, "model.safetensors")));
    }
}
