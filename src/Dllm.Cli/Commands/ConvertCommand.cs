using System.CommandLine;
using Dllm.Config;
using Dllm.Training;

namespace Dllm.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model("The AR checkpoint to convert (HF folder)");
        var data = new Option<string[]>("--data") { Description = "Training text: .txt (one document per line, or documents between '<|endoftext|>' lines), .jsonl ('text' field) or .parquet", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the converted dLLM checkpoint", Required = true };
        var schedule = new Option<string?>("--schedule") { Description = "Block-size schedule file (JSON or YAML: {\"phases\": [{\"steps\": N, \"block_size\": B}, ...]}); overrides --steps" };
        var kind = new Option<string>("--schedule-kind") { Description = "Built-in schedule: wsd (1 -> 4 -> 16 -> 64 -> L, stable at L, decay to --block-size), mdlm (B = L throughout), ar (B = 1)", DefaultValueFactory = _ => "wsd" };
        var seqLen = new Option<int>("--seq-len") { Description = "Training sequence length L (documents are packed to it)", DefaultValueFactory = _ => ConversionOptions.DefaultSequenceLength };
        var block = new Option<int>("--block-size") { Description = "Final (decay) block size, recorded as the model's decoding default: the model ends best at it, so set the block you will decode at (docs/conversion.md)", DefaultValueFactory = _ => DiffusionSettings.DefaultBlockSize };
        var noise = new Option<double>("--embedding-noise") { Description = "Masked-embedding noise std relative to the embedding RMS at step 0, annealed to 0 (0 = off)", DefaultValueFactory = _ => 0.1 };
        var noiseSteps = new Option<double>("--embedding-noise-fraction") { Description = "Fraction of the steps over which the embedding noise anneals to 0", DefaultValueFactory = _ => 0.1 };
        var noDocMask = new Option<bool>("--no-document-mask") { Description = "Let packed documents attend to each other (ablation; the default masks across documents)" };
        var complementary = new Option<bool>("--complementary") { Description = "Train every sequence with its mask and with the complement (each token scored once per step; twice the compute per step)" };
        var weighting = new Option<string>("--weighting")
        {
            Description = "Weight of a masked token's loss: flat (1; better at equal steps, docs/conversion.md) or elbo (1/t, the negative ELBO). Validation and eval always report the 1/t bound",
            DefaultValueFactory = _ => new ConversionLoss().Weighting.Name(),
        };
        weighting.AcceptOnlyFromAmong("flat", "elbo");
        var parentWeight = new Option<double>("--parent-weight")
        {
            Description = "Also pull every masked slot towards the AR parent's next-token distribution there (weight of KL(parent || dLLM); " +
                          "the parent is --model, frozen, run once per step on the clean text). 0 = off",
            DefaultValueFactory = _ => new ConversionLoss().ParentWeight,
        };
        var labels = SharedOptions.Labels(new ConversionOptions { Model = "", Data = [], Output = "" }.Labels);
        var train = new TrainingOptionsBinder(ConversionOptions.DefaultSteps, ConversionOptions.DefaultBatchSize);
        var command = new Command("convert",
            "Convert an AR checkpoint into a block-diffusion LM (LLaDA2.0 method): add a MASK token, then train with the " +
            $"block-diffusion loss while the block size follows the warmup-stable-decay schedule (1 -> ... -> L -> {Dllm.Config.DiffusionSettings.DefaultBlockSize} unless --block-size). " +
            "Progress, validation NELBO and atomic checkpoints go to the run folder; --resume continues exactly.")
        {
            model, data, output, schedule, kind, seqLen, block, noise, noiseSteps, noDocMask, labels, complementary, weighting, parentWeight,
        };
        foreach (var o in train.All) command.Options.Add(o);
        command.SetAction((p, cancel) =>
        {
            var trainer = train.BindFor(p, p.GetValue(model)!) with { EmbeddingNoise = p.GetValue(noise) };
            var options = new ConversionOptions
            {
                Model = p.GetValue(model)!,
                Data = p.GetValue(data)!,
                Output = p.GetValue(output)!,
                RunDirectory = p.GetValue(train.RunDir),
                ScheduleFile = p.GetValue(schedule),
                ScheduleKind = p.GetValue(kind)!,
                SequenceLength = p.GetValue(seqLen),
                BlockSize = p.GetValue(block),
                Trainer = trainer,
                DocumentMask = !p.GetValue(noDocMask),
                Labels = Dllm.Config.LabelPositions.Parse(p.GetValue(labels)!),
                EmbeddingNoiseFraction = p.GetValue(noiseSteps),
                Loss = new ConversionLoss(p.GetValue(complementary), LossWeightings.Parse(p.GetValue(weighting)!), p.GetValue(parentWeight)),
                Resume = p.GetValue(train.Resume),
            };
            return Task.FromResult(TrainingVerb.Run(p, "converting", cancel, (view, stop) => ConversionJob.Run(options, view, stop)));
        });
        return command;
    }
}
