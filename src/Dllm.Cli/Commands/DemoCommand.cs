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
            "convert it into a block-diffusion LM with the WSD block schedule, fine-tune it (SFT, SFT+CAP) and align it " +
            "(DPO), then compare every stage on held-out text and tasks (accuracy and tokens per forward). Leaves " +
            "DIR/data, DIR/tokenizer and DIR/{ar,dlm,sft,cap,dpo} (Hugging Face folders every other command reads).")
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
        var console = Output.ReportConsole(writer);
        console.WriteLine();
        console.MarkupLine($"[bold]dllm demo[/]: {r.Corpus.TrainDocuments:N0} training documents, BPE vocabulary {r.VocabSize}, model {r.Parameters / 1e6:F2} M parameters");
        console.WriteLine($"held-out perplexity: AR {r.ArPerplexity:F2} (exact); converted dLLM <= {r.DlmNelboBound:F2} (ELBO bound, block {r.BlockSize})");
        var kinds = r.Stages[0].Tasks.Details.Select(d => d.Item.Kind).Distinct().ToList();
        var table = new Table().Border(TableBorder.Rounded).Title($"held-out tasks (diffusion stages at block {r.BlockSize}, threshold {r.Threshold})")
            .AddColumn("stage").AddColumn("accuracy");
        foreach (var kind in kinds) table.AddColumn(kind);
        table.AddColumn("tokens / forward").AddColumn("tokens / s");
        foreach (var (stage, tasks) in r.Stages)
        {
            var cells = new List<string> { stage, $"{tasks.Accuracy:P1}" };
            foreach (var kind in kinds)
            {
                var items = tasks.Details.Where(d => d.Item.Kind == kind).ToList();
                cells.Add(items.Count == 0 ? "-" : $"{(double)items.Count(d => d.Correct) / items.Count:P0}");
            }
            cells.Add($"{tasks.TokensPerForward:F2}");
            cells.Add($"{tasks.TokensPerSecond:F0}");
            table.AddRow(cells.Select(c => new Text(c)).ToArray());
        }
        console.Write(table);
        console.WriteLine($"AR sample:   Once upon a time{r.ArSample}");
        console.WriteLine($"dLLM sample: Once upon a time{r.DlmSample}");
        console.WriteLine("time: " + string.Join(", ", r.Timings.Select(t => $"{t.Stage} {t.Seconds:F0}s")) + $" (total {r.Timings.Sum(t => t.Seconds):F0}s)");
        console.WriteLine($"models: {Path.GetFullPath(r.Output)}/{{ar,dlm,sft,cap,dpo}}");
        console.WriteLine($"next: ./dllm generate --model {Path.Combine(r.Output, "cap")} --prompt \"Compute: 12 + 30 =\" --threshold 0.9");
    }
}
