using System.CommandLine;
using Dllm.Demo;
using Spectre.Console;

namespace Dllm.Cli.Commands;

internal static class DemoCommand
{
    public static Command Build()
    {
        var quick = new Option<bool>("--quick") { Description = "A smaller corpus and model: under 2 minutes on 2 CPU cores (the full demo takes under 10)" };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the demo's data, tokenizer and models", DefaultValueFactory = _ => "demo" };
        var seed = new Option<long>("--seed") { Description = "Seed of the corpus, initialisation, data order and masks", DefaultValueFactory = _ => 1234 };
        var command = new Command("demo",
            "The end-to-end demo on embedded synthetic data, no downloads: write a corpus of simple stories and checkable " +
            "tasks (arithmetic, copying, reversal, key-value recall), train a BPE tokenizer, pre-train a small AR model, " +
            "convert it into a block-diffusion LM with the WSD block schedule, then compare the two on held-out text and " +
            "tasks. Leaves DIR/data, DIR/tokenizer, DIR/ar and DIR/dlm (Hugging Face folders every other command reads).")
        {
            quick, output, seed,
        };
        command.SetAction((p, cancel) =>
        {
            var options = new DemoOptions(p.GetValue(output)!, p.GetValue(quick), p.GetValue(seed));
            var view = new TrainingProgressView(Output.Out(p), Output.IsInteractive(p));
            var report = view.Run("demo", () => DemoJob.Run(options, view, cancel));
            Print(Output.Out(p), report);
            return Task.FromResult(0);
        });
        return command;
    }

    private static void Print(TextWriter writer, DemoReport r)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        console.WriteLine();
        console.MarkupLine($"[bold]dllm demo[/]: {r.Corpus.TrainDocuments:N0} training documents, BPE vocabulary {r.VocabSize}, model {r.Parameters / 1e6:F2} M parameters");
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("model").AddColumn("held-out perplexity").AddColumn("task accuracy").AddColumn("tokens / forward").AddColumn("tokens / s");
        table.AddRow("AR (pre-trained)", $"{r.ArPerplexity:F2} (exact)", $"{r.ArTasks.Accuracy:P1} of {r.ArTasks.Items}", $"{r.ArTasks.TokensPerForward:F2}", $"{r.ArTasks.TokensPerSecond:F0}");
        table.AddRow($"dLLM (converted, B={r.BlockSize})", $"<= {r.DlmNelboBound:F2} (ELBO bound)", $"{r.DlmTasks.Accuracy:P1} of {r.DlmTasks.Items}", $"{r.DlmTasks.TokensPerForward:F2}", $"{r.DlmTasks.TokensPerSecond:F0}");
        console.Write(table);
        console.WriteLine("accuracy by task kind (AR / dLLM):");
        foreach (var kind in r.ArTasks.Details.Select(d => d.Item.Kind).Distinct())
        {
            double Acc(IEnumerable<(Dllm.Evaluation.TaskItem Item, string Output, bool Correct)> d) { var l = d.Where(x => x.Item.Kind == kind).ToList(); return l.Count == 0 ? 0 : (double)l.Count(x => x.Correct) / l.Count; }
            console.WriteLine($"  {kind,-10} {Acc(r.ArTasks.Details):P0} / {Acc(r.DlmTasks.Details):P0}");
        }
        console.WriteLine($"AR sample:   Once upon a time{r.ArSample}");
        console.WriteLine($"dLLM sample: Once upon a time{r.DlmSample}");
        console.WriteLine("time: " + string.Join(", ", r.Timings.Select(t => $"{t.Stage} {t.Seconds:F0}s")) + $" (total {r.Timings.Sum(t => t.Seconds):F0}s)");
        console.WriteLine($"models: {Path.GetFullPath(Path.Combine(r.Output, "ar"))} and {Path.GetFullPath(Path.Combine(r.Output, "dlm"))}");
        console.WriteLine($"next: ./dllm generate --model {Path.Combine(r.Output, "dlm")} --prompt \"Compute: 12 + 30 =\" --threshold 0.9");
    }
}
