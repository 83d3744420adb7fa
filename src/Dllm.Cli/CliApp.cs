using System.CommandLine;
using Dllm.Cli.Commands;

namespace Dllm.Cli;

/// <summary>Builds the command tree and turns user errors into one line on stderr.</summary>
public static class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand(
            "dllm: turn pretrained autoregressive LMs (Llama, Qwen2/3, Ling/LLaDA2 MoE) into block-diffusion LMs, " +
            "then fine-tune, decode in parallel and serve them. Every command reads and writes Hugging Face " +
            "checkpoint folders (config.json, *.safetensors, tokenizer.json).");
        foreach (var command in Verbs()) root.Subcommands.Add(command);
        return root;
    }

    private static IEnumerable<Command> Verbs()
    {
        yield return GenerateCommand.Build();
        yield return ChatCommand.Build();
        yield return ServeCommand.Build();
        yield return ConvertCommand.Build();
        yield return EvalCommand.Build();
        yield return SftCommand.Build();
        yield return DpoCommand.Build();
        yield return PretrainCommand.Build();
        yield return MergeCommand.Build();
        yield return ExportCommand.Build();
        yield return InspectCommand.Build();
        yield return ImportLlama2cCommand.Build();
        yield return DoctorCommand.Build();
        yield return DemoCommand.Build();
        yield return PlotCommand.Build();
    }

    private static readonly AsyncLocal<TextReader?> StandardInput = new();

    /// <summary>Where interactive verbs (chat) read from: the invocation's stdin, so tests can script a session.</summary>
    internal static TextReader Input => StandardInput.Value ?? Console.In;

    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null, TextReader? stdin = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        StandardInput.Value = stdin;
        var root = BuildRoot();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var verb = parse.CommandResult.Command == root ? "" : " " + parse.CommandResult.Command.Name;
            // "Unrecognized command or argument 'x'" says more than the "Required command" that comes with it.
            var error = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            stderr.WriteLine($"error: {error.Message} (see 'dllm{verb} --help')");
            return 2;
        }
        try
        {
            // No ProcessTerminationTimeout: System.CommandLine would end the process 2 s after Ctrl-C whatever the
            // verb is doing. Training verbs handle SIGINT/SIGTERM themselves (StopSignals) to save a checkpoint;
            // the others keep the default, which ends them at once; serve's web host drains on its own.
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (Exception e) when (UserFacing(e) is { } message)
        {
            stderr.WriteLine($"error: {message}");
            return 1;
        }
    }

    /// <summary>The message to show for errors the user can fix; null for bugs (which keep their stack trace).</summary>
    private static string? UserFacing(Exception e) => e switch
    {
        DllmException d => d.Message,
        FileNotFoundException f => $"file not found: {f.FileName ?? f.Message}",
        DirectoryNotFoundException d => d.Message,
        UnauthorizedAccessException u => u.Message,
        OperationCanceledException => "cancelled",
        AggregateException { InnerExceptions.Count: 1 } a => UserFacing(a.InnerException!),
        _ => null,
    };
}
