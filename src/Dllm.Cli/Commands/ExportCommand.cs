using System.CommandLine;
using Dllm.Export;

namespace Dllm.Cli.Commands;

internal static class ExportCommand
{
    public static Command Build()
    {
        var model = new Argument<string>("MODEL_DIR") { Description = "A dLLM folder written by 'dllm convert', 'sft' or 'dpo' (dense Llama, Qwen2 or Qwen3)" };
        var format = new Option<string>("--format", "-f")
        {
            Description = "Target format: llada2 (LLaDA2MoeModelLM, for the official HF code, SGLang, dInfer and dFactory)",
            Required = true,
        };
        format.AcceptOnlyFromAmong("llada2");
        var output = new Option<string>("--out", "-o") { Description = "Folder to write (created or replaced as a whole; a folder holding other files is refused)", Required = true };
        var command = new Command("export",
            "Write a converted dLLM in another project's checkpoint format. --format llada2 writes a LLaDA2.0 checkpoint: every " +
            "layer dense (first_k_dense_replace = num_hidden_layers), q/k/v fused as attention.query_key_value in [Q; K; V] " +
            "head order, q/k norm and q/k/v bias as the source has them, the whole head rotated, weights in the source dtype bit " +
            "for bit, every config field stated, and tokenizer files naming the EOS and MASK tokens. The official HF code also " +
            "needs configuration_llada2_moe.py and modeling_llada2_moe.py beside it (auto_map names them); docs/formats.md " +
            "shows how to serve the export with SGLang or dInfer and fine-tune it with dFactory. Refused, with the reason: " +
            "shifted-label models, a bias on the attention output, rope scaling LLaDA2 lacks, and non-dLLM folders.\n\n" +
            "Example: dllm export runs/qwen3-dlm --format llada2 --out runs/qwen3-dlm-llada2")
        {
            model, format, output,
        };
        command.SetAction(p =>
        {
            var report = Llada2Exporter.Export(p.GetValue(model)!, p.GetValue(output)!);
            var o = Output.Out(p);
            o.WriteLine($"wrote {report.Directory}: {Llada2Exporter.Architecture} ({Llada2Exporter.ModelType}) from {report.SourceArchitecture}, {report.DType}, MASK id {report.MaskTokenId}");
            foreach (var note in report.Notes) Output.Err(p).WriteLine($"note: {note}");
            return 0;
        });
        return command;
    }
}
