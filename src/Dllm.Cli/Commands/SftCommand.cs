using System.CommandLine;
using Dllm.Chat;
using Dllm.FineTuning;

namespace Dllm.Cli.Commands;

internal static class SftCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model("The diffusion checkpoint to fine-tune (an AR one gets a MASK token first)");
        var data = new Option<string>("--data") { Description = "JSONL: chat 'messages' (last turn = assistant reply), prompt/answer (prompt used verbatim), or GSM8K question/answer", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the fine-tuned checkpoint", Required = true };
        var template = new Option<string?>("--template") { Description = $"Chat template ({string.Join(", ", ChatTemplate.Names)}); default: recognised from the tokenizer; prompt/answer data stays verbatim unless set" };
        var defaults = new SftSettings();
        var block = SharedOptions.TrainingBlockSize("Block size (responses are padded with EOS to a multiple of it)");
        var labels = new Option<string?>("--labels")
        {
            Description = "Only when fine-tuning an AR checkpoint directly: same (default) or shift, as for convert. A dLLM keeps the labels it was trained with",
        }.AcceptOnlyFromAmong("same", "shift");
        var (tMin, tMax) = SharedOptions.MaskRateBand(defaults.MinRate, defaults.MaxRate, "");
        var noComplement = new Option<bool>("--no-complementary") { Description = "Train each example once with one mask instead of with the mask and its complement" };
        var cap = new Option<double>("--cap-weight") { Description = "CAP: weight of the confidence (entropy) term on masked positions already predicted right (official: 2.0; 0 = plain SFT)", DefaultValueFactory = _ => 0.0 };
        var average = new Option<int>("--average-last")
        {
            Description = "Write the mean of the last K checkpoints (--checkpoint-every apart, the last at the final step) instead of the final " +
                          "one: evens out where the last noisy steps left the weights (at least K checkpoints are kept)",
            DefaultValueFactory = _ => 1,
        };
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens (prompts are cut from the left)", DefaultValueFactory = _ => 512 };
        var group = SharedOptions.GroupByLength();
        var train = new TrainingOptionsBinder(steps: 500, batchSize: 16);
        var command = new Command("sft",
            "Supervised fine-tuning of a diffusion LM: the prompt is never masked and carries no loss, response tokens " +
            "are masked at rates drawn from the band, each example trains with its mask and the complement, and " +
            "--cap-weight adds the confidence-aware (CAP) term that lets decoding unmask more tokens per step.")
        {
            model, data, output, template, block, tMin, tMax, noComplement, cap, average, maxLength, labels, group,
        };
        foreach (var o in train.All) command.Options.Add(o);
        command.SetAction((p, cancel) =>
        {
            var options = new SftOptions
            {
                Model = p.GetValue(model)!,
                Data = p.GetValue(data)!,
                Output = p.GetValue(output)!,
                RunDirectory = p.GetValue(train.RunDir),
                Template = p.GetValue(template),
                Settings = new SftSettings(SharedOptions.ResolveTrainingBlockSize(p, block, p.GetValue(model)!), p.GetValue(tMin), p.GetValue(tMax), !p.GetValue(noComplement), p.GetValue(cap)),
                Labels = p.GetValue(labels) is { } l ? Dllm.Config.LabelPositions.Parse(l) : null,
                MaxLength = p.GetValue(maxLength),
                AverageLast = p.GetValue(average),
                GroupByLength = p.GetValue(group),
                Trainer = train.BindFor(p, p.GetValue(model)!),
                Resume = p.GetValue(train.Resume),
            };
            SharedOptions.CheckMaskRateBand(options.Settings.MinRate, options.Settings.MaxRate);
            return Task.FromResult(TrainingVerb.Run(p, "fine-tuning", cancel, (view, stop) => SftJob.Run(options, view, stop)));
        });
        return command;
    }
}
