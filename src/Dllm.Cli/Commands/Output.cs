using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Dllm.Cli.Commands;

/// <summary>Where a verb writes: the invocation's stdout/stderr (tests capture them), and JSON formatting.</summary>
internal static class Output
{
    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static TextWriter Out(ParseResult p) => p.InvocationConfiguration.Output;
    public static TextWriter Err(ParseResult p) => p.InvocationConfiguration.Error;

    public static void WriteJson(ParseResult p, JsonNode node) => Out(p).WriteLine(node.ToJsonString(Compact));

    /// <summary>A Spectre console over <paramref name="writer"/> for tables and reports; 120 columns wide when it
    /// is not the real terminal (logs, pipes, tests), where Spectre would otherwise guess a narrow width.</summary>
    public static IAnsiConsole ReportConsole(TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        if (!ReferenceEquals(writer, Console.Out) || Console.IsOutputRedirected) console.Profile.Width = 120;
        return console;
    }

    /// <summary>True when stdout is the process's real console and not redirected (live views make sense).</summary>
    public static bool IsInteractive(ParseResult p) =>
        ReferenceEquals(Out(p), Console.Out) && !Console.IsOutputRedirected;
}
