using System.CommandLine;
using Dllm.Chat;
using Dllm.Generation;
using Dllm.Models;
using Spectre.Console;

namespace Dllm.Cli.Commands;

internal static class ChatCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model();
        var template = new Option<string?>("--template") { Description = $"Chat template: {string.Join(", ", ChatTemplate.Names)} (default: recognised from tokenizer_config.json, else plain)" };
        var system = new Option<string?>("--system") { Description = "A system message to start the conversation with" };
        var maxNew = new Option<int>("--max-new-tokens", "-n") { Description = "Most tokens per reply", DefaultValueFactory = _ => 256 };
        var temperature = new Option<double>("--temperature", "-t") { Description = "0 = greedy", DefaultValueFactory = _ => 0.0 };
        var blockSize = SharedOptions.BlockSize();
        var threshold = SharedOptions.Threshold();
        var editingThreshold = SharedOptions.EditingThreshold();
        var maxPostSteps = SharedOptions.MaxPostSteps();
        var mode = new Option<DecodeMode>("--mode") { Description = "auto, ar or diffusion", DefaultValueFactory = _ => DecodeMode.Auto };
        var threads = SharedOptions.Threads();
        var device = SharedOptions.Device();
        var dtype = SharedOptions.DType();
        var command = new Command("chat",
            "Talk to a model in the terminal. With a diffusion checkpoint you watch each block's MASKs turn into tokens as " +
            "they are unmasked; when stdin/stdout are not a terminal, replies stream as plain text. /reset clears the " +
            "conversation, /exit (or end of input) quits.")
        {
            model, template, system, maxNew, temperature, blockSize, threshold, editingThreshold, maxPostSteps, mode, threads, device, dtype,
        };
        command.SetAction((p, cancel) =>
        {
            // Settings are checked once up front; a per-turn error below only skips that turn.
            new DecodeOptions { MaxNewTokens = p.GetValue(maxNew), Sampling = new SamplingOptions(p.GetValue(temperature)) }.Validate();
            new BlockDecodeOptions(p.GetValue(blockSize) ?? 1, p.GetValue(threshold)).Validate();
            SharedOptions.ApplyThreads(p, threads);
            using var loaded = LoadedModel.Load(p.GetValue(model)!, SharedOptions.LoadOptions(p, device, dtype));
            var chat = p.GetValue(template) is { } name ? ChatTemplate.ByName(name) : ChatTemplate.For(loaded.Tokenizer);
            var resolved = TextGeneration.ResolveMode(loaded, p.GetValue(mode));
            var input = CliApp.Input;
            var live = Output.IsInteractive(p) && ReferenceEquals(input, Console.In) && !Console.IsInputRedirected;
            var output = Output.Out(p);
            output.WriteLine($"{loaded.Name}: {resolved.ToString().ToLowerInvariant()} decoding, {chat.Name} template. /reset, /exit.");
            var editing = SharedOptions.Editing(p, editingThreshold, maxPostSteps);
            var history = new List<ChatMessage>();
            // Every turn's prompt is the last one plus a reply and a message: its history is prefilled once. Two contexts'
            // worth holds the conversation and what a /reset left behind.
            using var prefixes = new PrefixCache(2L * loaded.Model.Config.MaxPositionEmbeddings);
            if (p.GetValue(system) is { } s) history.Add(ChatMessage.System(s));
            while (!cancel.IsCancellationRequested)
            {
                output.Write(live ? "\n> " : "> ");
                output.Flush();
                var line = input.ReadLine();
                if (line is null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset") { history.RemoveAll(m => m.Role != "system"); output.WriteLine("(conversation cleared)"); continue; }
                if (line.Trim().Length == 0) continue;
                history.Add(ChatMessage.User(line));
                var request = new GenerationRequest
                {
                    Prompt = chat.Render(history),
                    AddSpecialTokens = chat.AddSpecialTokens,
                    StopStrings = chat.StopStrings,
                    Mode = resolved,
                    Options = new DecodeOptions { MaxNewTokens = p.GetValue(maxNew), Sampling = new SamplingOptions(p.GetValue(temperature)) },
                    Block = new BlockDecodeOptions(p.GetValue(blockSize) ?? loaded.DefaultBlockSize, p.GetValue(threshold), Editing: editing),
                };
                GenerationResult result;
                try
                {
                    result = live && resolved == DecodeMode.Diffusion ? LiveBlocks(loaded, request, prefixes, cancel) : Stream(output, loaded, request, prefixes, cancel);
                }
                catch (DllmException e) when (e is not NonFiniteLogitsException)
                {
                    // One turn the model cannot take (the conversation outgrew the context) must not end the session.
                    history.RemoveAt(history.Count - 1);
                    Output.Err(p).WriteLine($"error: {e.Message}; this message was not added: /reset starts a new conversation");
                    continue;
                }
                history.Add(ChatMessage.Assistant(result.Text.Trim()));
                output.WriteLine();
                Output.Err(p).WriteLine($"[{result.DecodedTokens} tokens decoded, {result.TokensPerForward:F2} tokens/forward, {result.TokensPerSecond:F1} tokens/s]");
            }
            return Task.FromResult(0);
        });
        return command;
    }

    private static GenerationResult Stream(TextWriter output, LoadedModel model, GenerationRequest request, PrefixCache prefixes, CancellationToken cancel)
    {
        GenerationResult? result = null;
        foreach (var e in TextGeneration.Stream(model, [request], cancel, prefixes))
        {
            output.Write(e.Delta);
            output.Flush();
            result ??= e.Result;
        }
        return result ?? throw new OperationCanceledException();
    }

    /// <summary>Redraws the reply after every step: decided tokens as text, still-masked slots of the block as ░.</summary>
    private static GenerationResult LiveBlocks(LoadedModel model, GenerationRequest request, PrefixCache prefixes, CancellationToken cancel)
    {
        GenerationResult? result = null;
        var tokens = new SortedDictionary<int, int>();
        var text = new Markup("");
        AnsiConsole.Live(text).AutoClear(false).Start(ctx =>
        {
            foreach (var e in TextGeneration.Stream(model, [request], cancel, prefixes))
            {
                foreach (var u in e.Step.Updates)
                    for (var i = 0; i < u.Positions.Length; i++) tokens[u.Positions[i]] = u.Tokens[i];
                result ??= e.Result;
                ctx.UpdateTarget(new Markup(Render(model, tokens, e.Step, result)));
            }
        });
        return result ?? throw new OperationCanceledException();
    }

    private static string Render(LoadedModel model, SortedDictionary<int, int> tokens, DecodeStep step, GenerationResult? done)
    {
        if (done is not null) return Markup.Escape(done.Text);
        var end = step.BlockStart + step.BlockLength;
        var parts = new List<string>();
        var run = new List<int>();
        for (var pos = 0; pos < end; pos++)
        {
            if (tokens.TryGetValue(pos, out var t)) { run.Add(t); continue; }
            if (run.Count > 0) { parts.Add(Markup.Escape(model.Tokenizer.Decode(run, skipSpecialTokens: true))); run.Clear(); }
            parts.Add("[grey]░[/]");
        }
        if (run.Count > 0) parts.Add(Markup.Escape(model.Tokenizer.Decode(run, skipSpecialTokens: true)));
        return string.Concat(parts);
    }
}
