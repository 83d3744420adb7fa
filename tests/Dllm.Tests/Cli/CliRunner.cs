using System.Diagnostics;
using System.Text.Json.Nodes;
using Dllm.Cli;

namespace Dllm.Tests.Cli;

/// <summary>Runs the CLI in-process (captured stdout/stderr) or through the ./dllm launcher.</summary>
public static class CliRunner
{
    public sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public JsonNode Json => JsonNode.Parse(Stdout) ?? throw new InvalidOperationException("no JSON on stdout: " + Stdout);
    }

    public static Run InProcess(params string[] args) => WithInput("", args);

    /// <summary>Runs with <paramref name="stdin"/> as standard input (for interactive verbs).</summary>
    public static Run WithInput(string stdin, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = CliApp.Run(args, stdout, stderr, new StringReader(stdin));
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    public static Run Launcher(params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(TestData.RepoRoot, "dllm"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = TestData.RepoRoot,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); throw new TimeoutException("./dllm did not finish"); }
        return new Run(process.ExitCode, stdout.Result, stderr.Result);
    }
}
