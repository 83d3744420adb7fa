using System.CommandLine;
using Dllm.Import;

namespace Dllm.Cli.Commands;

internal static class ImportLlama2cCommand
{
    public static Command Build()
    {
        var model = new Argument<string>("MODEL.bin") { Description = "llama2.c model file (legacy version-0 export, e.g. stories260K.bin)" };
        var tokenizer = new Argument<string>("TOKENIZER.bin") { Description = "llama2.c tokenizer file (e.g. tok512.bin)" };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write the Hugging Face Llama checkpoint into", Required = true };
        var command = new Command("import-llama2c",
            "Convert a llama2.c model and tokenizer into a Hugging Face Llama checkpoint (config.json, model.safetensors, " +
            "tokenizer.json) that every other dllm command reads. The tokenizer encodes exactly as llama2.c does.")
        {
            model, tokenizer, output,
        };
        command.SetAction(p =>
        {
            var dir = p.GetValue(output)!;
            Llama2cImporter.Import(p.GetValue(model)!, p.GetValue(tokenizer)!, dir);
            Output.Out(p).WriteLine($"wrote {Path.GetFullPath(dir)}");
            return 0;
        });
        return command;
    }
}
