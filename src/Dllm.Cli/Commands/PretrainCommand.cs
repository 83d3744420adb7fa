using System.CommandLine;
using System.Text.Json.Nodes;
using Dllm.Training;

namespace Dllm.Cli.Commands;

internal static class PretrainCommand
{
    public static Command Build()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with the tokenizer.json to train with", Required = true };
        var data = new Option<string[]>("--data") { Description = "Training text files (.txt, .jsonl, .parquet)", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the trained AR checkpoint", Required = true };
        var config = new Option<string?>("--config") { Description = "An HF config.json for the new model (else the size flags below build a Llama)" };
        var hidden = new Option<int>("--hidden") { Description = "Hidden size", DefaultValueFactory = _ => 256 };
        var layers = new Option<int>("--layers") { Description = "Decoder layers", DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { Description = "Attention heads", DefaultValueFactory = _ => 8 };
        var kvHeads = new Option<int>("--kv-heads") { Description = "Key/value heads (grouped-query attention)", DefaultValueFactory = _ => 4 };
        var ffn = new Option<int>("--ffn") { Description = "SwiGLU width (0 = 8/3 x hidden, rounded to 32)", DefaultValueFactory = _ => 0 };
        var seqLen = new Option<int>("--seq-len") { Description = "Training sequence length (also the model's context)", DefaultValueFactory = _ => 256 };
        var train = new TrainingOptionsBinder(steps: 2000, batchSize: 16, lrScale: 2.0);
        var command = new Command("pretrain",
            "Train a small Llama-style AR model from scratch on text (the starting point of the demo, and a way to get an " +
            "AR model to convert when you have none).")
        {
            tokenizer, data, output, config, hidden, layers, heads, kvHeads, ffn, seqLen,
        };
        foreach (var o in train.All) command.Options.Add(o);
        command.SetAction((p, cancel) =>
        {
            var json = p.GetValue(config) is { } path
                ? Dllm.IO.StrictJson.ParseObject(File.Exists(path) ? File.ReadAllText(path) : throw new DllmException($"config file not found: {path}"), path)
                : ModelPresets.Llama(p.GetValue(hidden), p.GetValue(layers), p.GetValue(heads), p.GetValue(kvHeads), p.GetValue(ffn), p.GetValue(seqLen));
            var options = new PretrainOptions
            {
                Tokenizer = p.GetValue(tokenizer)!,
                Config = json,
                Data = p.GetValue(data)!,
                Output = p.GetValue(output)!,
                RunDirectory = p.GetValue(train.RunDir),
                SequenceLength = p.GetValue(seqLen),
                Trainer = train.Bind(p, json["hidden_size"]?.GetValue<int>() ?? 256),
                Resume = p.GetValue(train.Resume),
            };
            return Task.FromResult(TrainingVerb.Run(p, "pre-training", cancel, (view, stop) => PretrainJob.Run(options, view, stop)));
        });
        return command;
    }
}
