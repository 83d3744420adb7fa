using Dllm.Tests.Cli;

namespace Dllm.Tests.Serving;

public class ServeCommandTests
{
    [Fact]
    public void HelpTeachesTheEndpointsAndTheSchedulerKnobs()
    {
        var run = CliRunner.InProcess("serve", "--help");
        Assert.Equal(0, run.ExitCode);
        foreach (var text in new[] { "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "block_size", "threshold", "tokens_per_forward",
                     "--max-batch", "--max-queue", "--prefix-cache-tokens", "--prefill-chunk", "--max-body-bytes", "--port", "--drain-timeout", "--threads", "Ctrl-C" })
            Assert.Contains(text, run.Stdout);
    }

    [Theory]
    [InlineData("model folder not found", "--model", "/no/such/dir", "--port", "0")]
    [InlineData("max batch must be at least 1", "--model", "/no/such/dir", "--max-batch", "0")]
    [InlineData("max queue must be at least 1", "--model", "/no/such/dir", "--max-queue", "0")]
    [InlineData("prefix cache size must be 0 (off) or more tokens", "--model", "/no/such/dir", "--prefix-cache-tokens", "-1")]
    [InlineData("prefill chunk must be 0 (whole prompts) or more tokens", "--model", "/no/such/dir", "--prefill-chunk", "-5")]
    [InlineData("port must be between 0 and 65535", "--model", "/no/such/dir", "--port", "70000")]
    [InlineData("unknown chat template", "--model", "/no/such/dir", "--template", "jinja")]
    [InlineData("request body limit (--max-body-bytes) must be at least 1 byte", "--model", "/no/such/dir", "--max-body-bytes", "0")]
    public void BadOptionsFailWithOneLineBeforeLoadingAnything(string message, params string[] args)
    {
        var run = CliRunner.InProcess(["serve", .. args]);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains(message, run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
    }
}
