using System.CommandLine;
using Dllm.Chat;
using Dllm.FineTuning;

namespace Dllm.Cli.Commands;

internal static class DpoCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model("The diffusion checkpoint to align (the policy)");
        var reference = new Option<string?>("--ref") { Description = "Frozen reference checkpoint (default: the policy's starting weights)" };
        var data = new Option<string>("--data") { Description = "Preference pairs: JSONL prompt/chosen/rejected (strings or message lists), ShareGPT ranking JSON, or chosen_messages/rejected_messages", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the aligned checkpoint", Required = true };
        var defaults = new DpoSettings();
        var beta = new Option<double>("--beta") { Description = "DPO temperature beta", DefaultValueFactory = _ => defaults.Beta };
        var samples = new Option<int>("--elbo-samples") { Description = "Monte-Carlo draws per sequence for the ELBO (policy and reference share them)", DefaultValueFactory = _ => defaults.ElboSamples };
        var block = SharedOptions.TrainingBlockSize("Block size of the ELBO estimates");
        var nllWeight = new Option<double>("--chosen-nll-weight")
        {
            Description = "Add this weight times the chosen response's diffusion NLL per token (RPO); 0 is plain DPO, as the method states it",
            DefaultValueFactory = _ => defaults.ChosenNllWeight,
        };
        var (tMin, tMax) = SharedOptions.MaskRateBand(defaults.MinRate, defaults.MaxRate, " of the ELBO draws");
        var padding = new Option<bool>("--elbo-padding")
        {
            Description = "Also count the EOS that pad each response to the batch's length in its ELBO (off: only the response and its end " +
                          "token count, so a response's ELBO does not depend on the batch; the padding is masked either way)",
            DefaultValueFactory = _ => defaults.ScorePadding,
        };
        var template = new Option<string?>("--template") { Description = $"Chat template ({string.Join(", ", ChatTemplate.Names)})" };
        var maxLength = new Option<int>("--max-length") { Description = "Longest sequence in tokens", DefaultValueFactory = _ => 512 };
        var group = SharedOptions.GroupByLength();
        var train = new TrainingOptionsBinder(steps: 200, batchSize: 8, lrScale: 0.1);
        var command = new Command("dpo",
            "Preference optimisation (DPO) of a diffusion LM with the ELBO surrogate: log-likelihoods are replaced by " +
            "-NELBO estimated from shared masks, so the policy and the frozen reference are compared on the same draws. " +
            "--batch-size counts preference pairs.")
        {
            model, reference, data, output, beta, samples, block, nllWeight, tMin, tMax, padding, template, maxLength, group,
        };
        foreach (var o in train.All) command.Options.Add(o);
        command.SetAction((p, cancel) =>
        {
            if (p.GetValue(samples) <= 0) throw new DllmException($"--elbo-samples must be positive, got {p.GetValue(samples)}");
            if (p.GetValue(nllWeight) < 0) throw new DllmException($"--chosen-nll-weight must not be negative, got {p.GetValue(nllWeight)}");
            var options = new DpoOptions
            {
                Model = p.GetValue(model)!,
                Reference = p.GetValue(reference),
                Data = p.GetValue(data)!,
                Output = p.GetValue(output)!,
                RunDirectory = p.GetValue(train.RunDir),
                Template = p.GetValue(template),
                Settings = new DpoSettings(p.GetValue(beta), p.GetValue(samples), SharedOptions.ResolveTrainingBlockSize(p, block, p.GetValue(model)!),
                    p.GetValue(tMin), p.GetValue(tMax), p.GetValue(nllWeight), p.GetValue(padding)),
                MaxLength = p.GetValue(maxLength),
                GroupByLength = p.GetValue(group),
                Trainer = train.BindFor(p, p.GetValue(model)!),
                Resume = p.GetValue(train.Resume),
            };
            SharedOptions.CheckMaskRateBand(options.Settings.MinRate, options.Settings.MaxRate);
            return Task.FromResult(TrainingVerb.Run(p, "preference optimisation", cancel, (view, stop) => DpoJob.Run(options, view, stop)));
        });
        return command;
    }
}
