using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Cli.Commands;

/// <summary>Where a verb writes: the invocation's stdout/stderr (tests capture them), and JSON formatting.</summary>
internal static class Output
{
    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static TextWriter Out(ParseResult p) => p.InvocationConfiguration.Output;
    public static TextWriter Err(ParseResult p) => p.InvocationConfiguration.Error;

    public static void WriteJson(ParseResult p, JsonNode node) => Out(p).WriteLine(node.ToJsonString(Compact));

    /// <summary>True when stdout is the process's real console and not redirected (live views make sense).</summary>
    public static bool IsInteractive(ParseResult p) =>
        ReferenceEquals(Out(p), Console.Out) && !Console.IsOutputRedirected;
}
