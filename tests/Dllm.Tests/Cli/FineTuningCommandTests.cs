using System.Text.Json.Nodes;
using Dllm.Runtime;

namespace Dllm.Tests.Cli;

/// <summary>sft (with CAP), dpo, eval --task and plot end to end through the CLI on a tiny model.</summary>
public class FineTuningCommandTests
{
    public FineTuningCommandTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Prompt/answer JSONL of one-digit additions (the tiny byte-level tokenizer spells them out).</summary>
    internal static string Tasks(TempDirectory dir, string name, int count, int seed)
    {
        var rng = new Random(seed);
        var lines = Enumerable.Range(0, count).Select(_ =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            return new JsonObject { ["prompt"] = $"Compute: {a} + {b} =", ["answer"] = $" {a + b}", ["kind"] = "arithmetic" }.ToJsonString();
        });
        var path = dir.File(name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void SftCapDpoAndTaskEvalRunEndToEnd()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llada2", dir.File("base"));
        var train = Tasks(dir, "train.jsonl", 40, 1);
        var test = Tasks(dir, "test.jsonl", 6, 2);

        var sft = CliRunner.InProcess("sft", "--model", model, "--data", train, "--out", dir.File("sft"), "--steps", "4", "--batch-size", "4", "--block-size", "4", "--cap-weight", "2");
        Assert.True(sft.ExitCode == 0, sft.Stderr + sft.Stdout);
        Assert.Contains("CAP weight 2", sft.Stdout);
        var config = JsonNode.Parse(File.ReadAllText(dir.File("sft/config.json")))!;
        Assert.NotNull(config["mask_token_id"]);
        var sftPlan = JsonNode.Parse(File.ReadAllText(dir.File("sft-run/train_config.json")))!;
        Assert.Equal("sft+cap", sftPlan["job"]!.GetValue<string>());
        Assert.False(sftPlan["group_by_length"]!.GetValue<bool>());

        File.WriteAllLines(dir.File("pairs.jsonl"), File.ReadLines(train).Select(l =>
        {
            var o = JsonNode.Parse(l)!;
            return new JsonObject { ["prompt"] = o["prompt"]!.GetValue<string>(), ["chosen"] = o["answer"]!.GetValue<string>(), ["rejected"] = " 99" }.ToJsonString();
        }));
        var dpo = CliRunner.InProcess("dpo", "--model", dir.File("sft"), "--data", dir.File("pairs.jsonl"), "--out", dir.File("dpo"), "--steps", "3", "--batch-size", "2", "--block-size", "4", "--elbo-samples", "2", "--chosen-nll-weight", "1", "--group-by-length", "--mask-max", "0.9");
        Assert.True(dpo.ExitCode == 0, dpo.Stderr + dpo.Stdout);
        var dpoPlan = JsonNode.Parse(File.ReadAllText(dir.File("dpo-run/train_config.json")))!;
        Assert.True(dpoPlan["group_by_length"]!.GetValue<bool>());
        Assert.Equal(0.9, dpoPlan["mask_rate_band"]![1]!.GetValue<double>());
        var metrics = File.ReadAllLines(dir.File("dpo-run/metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, metrics.Count);
        Assert.All(metrics, m => Assert.InRange(m["dpo_reward_accuracy"]!.GetValue<double>(), 0, 1));
        Assert.Equal(0, metrics[0]["dpo_chosen_reward"]!.GetValue<double>());   // the policy starts as the reference
        // The RPO term is part of the loss: resuming without it would train another objective from the checkpoint on.
        Directory.Move(dir.File("dpo"), dir.File("dpo-done"));   // as if the run had stopped after its last checkpoint
        var withoutNll = CliRunner.InProcess("dpo", "--model", dir.File("sft"), "--data", dir.File("pairs.jsonl"), "--out", dir.File("dpo"), "--steps", "3", "--batch-size", "2", "--block-size", "4", "--elbo-samples", "2", "--group-by-length", "--mask-max", "0.9", "--resume");
        Assert.Equal(1, withoutNll.ExitCode);
        Assert.Contains("chosen_nll_weight was 1, now 0", withoutNll.Stderr);
        Directory.Move(dir.File("dpo-done"), dir.File("dpo"));

        var eval = CliRunner.InProcess("eval", "--model", dir.File("dpo"), "--task", test, "--block-size", "4", "--threshold", "0.9", "-n", "4", "--json");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Equal(6, eval.Json["items"]!.GetValue<int>());
        Assert.InRange(eval.Json["accuracy"]!.GetValue<double>(), 0, 1);
        Assert.True(eval.Json["tokens_per_forward"]!.GetValue<double>() > 0);
        // No decoder beats one forward per block an answer touches; every touched block holds at least one token.
        Assert.InRange(eval.Json["tokens_per_forward"]!.GetValue<double>(), 0, eval.Json["tokens_per_forward_ceiling"]!.GetValue<double>() + 1e-9);
        Assert.InRange(eval.Json["tokens_per_forward_ceiling"]!.GetValue<double>(), 1, 4);
        Assert.Equal("diffusion", eval.Json["mode"]!.GetValue<string>());
        Assert.Null(eval.Json["mistakes"]);

        // --mistakes lists the wrong answers only, each with what was expected and what came out.
        var wrong = CliRunner.InProcess("eval", "--model", dir.File("dpo"), "--task", test, "--block-size", "4", "--threshold", "0.9", "-n", "4", "--json", "--mistakes", "100");
        Assert.True(wrong.ExitCode == 0, wrong.Stderr);
        var listed = wrong.Json["mistakes"]!.AsArray();
        Assert.Equal(6 - wrong.Json["correct"]!.GetValue<int>(), listed.Count);
        var prompts = File.ReadLines(test).Select(l => JsonNode.Parse(l)!["prompt"]!.GetValue<string>()).ToList();
        Assert.All(listed, m => Assert.Contains(m!["prompt"]!.GetValue<string>(), prompts));
        Assert.All(listed, m => Assert.NotEqual(m!["expected"]!.GetValue<string>().Trim(), m["output"]!.GetValue<string>().Trim()));
        var few = CliRunner.InProcess("eval", "--model", dir.File("dpo"), "--task", test, "--block-size", "4", "--threshold", "0.9", "-n", "4", "--mistakes", "1");
        Assert.True(few.ExitCode == 0, few.Stderr);
        if (listed.Count > 0) Assert.Contains("expected:", few.Stdout);

        var plot = CliRunner.InProcess("plot", dir.File("sft-run"), dir.File("dpo-run"), "--out", dir.File("loss.png"));
        Assert.True(plot.ExitCode == 0, plot.Stderr);
        var png = File.ReadAllBytes(dir.File("loss.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        // DPO has no validation split: asking for its validation curve says so instead of drawing an empty chart.
        var noValidation = CliRunner.InProcess("plot", dir.File("dpo-run"), "--metric", "valid", "--out", dir.File("valid.png"));
        Assert.Equal(1, noValidation.ExitCode);
        Assert.Contains("validation metric", noValidation.Stderr);
        Assert.False(File.Exists(dir.File("valid.png")));
    }

    [Fact]
    public void BadFineTuningInputIsAClearError()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llada2", dir.File("base"));
        File.WriteAllText(dir.File("bad.jsonl"), "{\"prompt\": 3}\n");
        var run = CliRunner.InProcess("sft", "--model", model, "--data", dir.File("bad.jsonl"), "--out", dir.File("o"), "--steps", "1");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("line 1", run.Stderr);
        var band = CliRunner.InProcess("sft", "--model", model, "--data", dir.File("bad.jsonl"), "--out", dir.File("o"), "--mask-min", "0.9", "--mask-max", "0.2");
        Assert.Contains("band", band.Stderr);
        var dpoBand = CliRunner.InProcess("dpo", "--model", model, "--data", dir.File("bad.jsonl"), "--out", dir.File("o"), "--mask-max", "1.5");
        Assert.Equal(1, dpoBand.ExitCode);
        Assert.Contains("mask-rate band must satisfy", dpoBand.Stderr);
        var noTask = CliRunner.InProcess("eval", "--model", model);
        Assert.Contains("--task", noTask.Stderr);
    }
}
