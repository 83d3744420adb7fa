using System.CommandLine;
using Dllm.Demo;
using Spectre.Console;

namespace Dllm.Cli.Commands;

internal static class DemoCommand
{
    public static Command Build()
    {
        var quick = new Option<bool>("--quick") { Description = "The same pipeline in about 2 minutes on 2 CPU cores: lists of 3-6 words, a 0.13 M-parameter model, block 16. " +
            "With the default seed its AR parent solved 88-96% of the held-out tasks and its dLLM 98-100% at 3.7-4.2 tokens per forward (three hosts; results vary between CPUs and builds); the full demo (lists of 8-24 words, 0.9 M parameters, block 32) takes about 10 minutes" };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the demo's data, tokenizer and models", DefaultValueFactory = _ => "demo" };
        var plainSft = new Option<bool>("--plain-sft")
        {
            Description = "Also fine-tune without CAP, side by side with SFT+CAP from the same start and budget, and add its row to the " +
                          "table: what CAP adds to tokens per forward (about 2 more minutes for the full demo on 2 cores)",
        };
        var seed = new Option<long>("--seed") { Description = "Seed of the corpus, initialisation, data order and masks", DefaultValueFactory = _ => 1234 };
        var command = new Command("demo",
            "The end-to-end demo on embedded synthetic data, no downloads: write a corpus of simple stories and checkable " +
            "tasks with long answers (copy or reverse a list of 8-24 words), train a BPE tokenizer, pre-train a small AR model, " +
            "convert it into a block-diffusion LM with the WSD block schedule, fine-tune it (SFT+CAP) and align it " +
            "(DPO), then compare every stage on held-out text and tasks (accuracy per kind, tokens per forward, tokens/s against " +
            "the AR parent in interleaved passes). Leaves " +
            "DIR/data, DIR/tokenizer and DIR/{ar,dlm,cap,dpo} (Hugging Face folders every other command reads; DIR/sft with --plain-sft).")
        {
            quick, output, seed, plainSft,
        };
        command.SetAction((p, cancel) =>
        {
            var options = (p.GetValue(quick) ? DemoOptions.QuickRun(p.GetValue(output)!, p.GetValue(seed)) : DemoOptions.Full(p.GetValue(output)!, p.GetValue(seed)))
                with { PlainSft = p.GetValue(plainSft) };
            var view = new TrainingProgressView(Output.Out(p), Output.IsInteractive(p));
            var report = view.Run("demo", () => DemoJob.Run(options, view, cancel));
            Print(Output.Out(p), report);
            return Task.FromResult(0);
        });
        return command;
    }

    private static void Print(TextWriter writer, DemoReport r)
    {
        var o = r.Options;
        var console = Output.ReportConsole(writer);
        console.WriteLine();
        console.MarkupLine($"[bold]dllm demo[/]: {r.Corpus.TrainDocuments:N0} training documents, BPE vocabulary {o.VocabSize}, model {r.Parameters / 1e6:F2} M parameters");
        console.WriteLine($"held-out perplexity: AR {r.ArPerplexity:F2} (exact); converted dLLM <= {r.DlmNelboBound:F2} (ELBO bound, block {o.BlockSize})");
        var kinds = r.Stages[0].Tasks.ByKind.Select(k => k.Kind).ToList();
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"{r.Stages[0].Tasks.Items} held-out tasks, greedy, one prompt at a time (diffusion: block {o.BlockSize}, threshold {o.Threshold})")
            .AddColumn("stage").AddColumn("accuracy");
        foreach (var kind in kinds) table.AddColumn($"{kind} (acc, TPF)");
        table.AddColumn("tokens / forward").AddColumn("tokens / s");
        foreach (var (stage, tasks) in r.Stages)
        {
            var cells = new List<string> { stage, $"{tasks.Accuracy:P1}" };
            var byKind = tasks.ByKind.ToDictionary(k => k.Kind);
            foreach (var kind in kinds)
                cells.Add(byKind.TryGetValue(kind, out var k) ? $"{k.Accuracy:P0}, {k.TokensPerForward:F1}" : "-");
            cells.Add($"{tasks.TokensPerForward:F2}");
            var tps = ReferenceEquals(tasks, r.Speed.Ar) ? r.Speed.ArTokensPerSecond
                : ReferenceEquals(tasks, r.Speed.Diffusion) ? r.Speed.DiffusionTokensPerSecond : tasks.TokensPerSecond;
            cells.Add($"{tps:F0}");
            table.AddRow(cells.Select(c => new Text(c)).ToArray());
        }
        console.Write(table);
        console.WriteLine($"SFT+CAP vs its AR parent, same tasks, {r.Speed.Passes} interleaved pass(es), median tokens/s: {r.Speed.SpeedRatio:F2}x the speed, " +
                          $"{100 * r.Speed.AccuracyGap:+0.0;-0.0} points of accuracy, {r.Speed.Diffusion.TokensPerForward:F2} tokens per forward");
        console.WriteLine("tokens / forward counts decoded tokens (the EOS included) per decoding forward; AR is exactly 1. " +
                          $"At block {o.BlockSize} an answer needs a forward per block it touches, so SFT+CAP's answers allow at most " +
                          $"{r.Speed.Diffusion.TokensPerForwardCeiling:F2}");
        console.WriteLine($"AR sample:   Once upon a time{r.ArSample}");
        console.WriteLine($"dLLM sample: Once upon a time{r.DlmSample}");
        console.WriteLine("time: " + string.Join(", ", r.Timings.Select(t => $"{t.Stage} {t.Seconds:F0}s")) + $" (total {r.Timings.Sum(t => t.Seconds):F0}s)");
        console.WriteLine($"models: {Path.GetFullPath(o.Output)}/{{{(o.PlainSft ? "ar,dlm,sft,cap,dpo" : "ar,dlm,cap,dpo")}}}");
        console.WriteLine($"next: ./dllm generate --model {Path.Combine(o.Output, "cap")} --prompt \"{o.ExamplePrompt}\" --threshold {o.Threshold}");
    }
}
