using Dllm.Runtime;

namespace Dllm.Tests.Cli;

public class CliTests
{
    public CliTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void LauncherBuildsTheCliAndLibtorchComputesThere()
    {
        var run = CliRunner.Launcher("doctor", "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.True(run.Json["libtorch_loaded"]!.GetValue<bool>());
        Assert.True(run.Json["matmul_fp32_ok"]!.GetValue<bool>());
        Assert.True(run.Json["matmul_bf16_ok"]!.GetValue<bool>());
    }

    [Fact]
    public void GenerateJsonHasTheDocumentedFieldsAndGreedyIsDeterministic()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("qwen3", dir.File("m"));
        var a = CliRunner.InProcess("generate", "--model", model, "--prompt", "hello", "--max-new-tokens", "7", "--json");
        Assert.True(a.ExitCode == 0, a.Stderr);
        var json = a.Json;
        var ids = json["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        Assert.InRange(ids.Length, 1, 7);
        var stopped = json["finish_reason"]!.GetValue<string>() == "stop" ? 1 : 0;
        Assert.Equal(ids.Length + stopped, json["forwards"]!.GetValue<int>());   // AR: one forward per token, the stop token too
        Assert.Equal(1.0, json["tokens_per_forward"]!.GetValue<double>());   // a stop token counts as decoded
        Assert.True(json["tokens_per_second"]!.GetValue<double>() > 0);
        Assert.Equal("ar", json["mode"]!.GetValue<string>());
        Assert.NotNull(json["text"]);
        var b = CliRunner.InProcess("generate", "--model", model, "--prompt", "hello", "--max-new-tokens", "7", "--json");
        Assert.Equal(a.Stdout, b.Stdout.Replace(b.Json["tokens_per_second"]!.ToJsonString(), json["tokens_per_second"]!.ToJsonString())
            .Replace(b.Json["seconds"]!.ToJsonString(), json["seconds"]!.ToJsonString()));
    }

    [Theory]
    [InlineData(1, "model folder not found", "generate", "--model", "/no/such/dir", "--prompt", "x")]
    [InlineData(2, "--prompt", "generate", "--model", "/tmp")]
    [InlineData(2, "--max-new-tokens", "generate", "--model", "/tmp", "-p", "x", "--max-new-tokens", "lots")]
    [InlineData(1, "top-p", "generate", "--model", "{model}", "-p", "x", "--top-p", "3")]
    [InlineData(1, "no config.json", "inspect", "/tmp")]
    [InlineData(2, "Unrecognized", "frobnicate")]
    public void BadInputIsOneClearLineAndANonZeroExit(int code, string fragment, params string[] args)
    {
        using var dir = new TempDirectory();
        if (args.Contains("{model}")) args = args.Select(a => a == "{model}" ? TinyCheckpoints.Write("llama", dir.File("m")) : a).ToArray();
        var run = CliRunner.InProcess(args);
        Assert.Equal(code, run.ExitCode);
        Assert.Contains(fragment, run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    [Fact]
    public void PromptLongerThanTheContextIsRejected()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llama", dir.File("m"));
        var run = CliRunner.InProcess("generate", "--model", model, "--prompt", new string('a', 300));
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("context", run.Stderr);
    }

    [Fact]
    public void InspectReportsArchitectureParametersAndSpecialTokens()
    {
        using var dir = new TempDirectory();
        var model = TinyCheckpoints.Write("llada2", dir.File("m"));
        var run = CliRunner.InProcess("inspect", model, "--json", "--tensors");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var j = run.Json;
        Assert.Equal("LLaDA2MoeModelLM", j["architecture"]!.GetValue<string>());
        Assert.True(j["diffusion"]!.GetValue<bool>());
        Assert.Equal(8, j["num_experts"]!.GetValue<int>());
        var tensors = j["tensors"]!.AsArray();
        var total = tensors.Sum(t => t!["shape"]!.AsArray().Aggregate(1L, (a, d) => a * d!.GetValue<long>()));
        Assert.Equal(total, j["parameters"]!.GetValue<long>());
        Assert.Equal(263, j["tokenizer"]!["eos_token_id"]!.GetValue<int>());
        var text = CliRunner.InProcess("inspect", model);
        Assert.Contains("LLaDA2MoeModelLM", text.Stdout);
        Assert.Contains("block-diffusion", text.Stdout);
    }
}
