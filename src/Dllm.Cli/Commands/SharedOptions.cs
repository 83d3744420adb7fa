using System.CommandLine;
using Dllm.Config;
using Dllm.Models;

namespace Dllm.Cli.Commands;

/// <summary>Options several verbs share, defined once so their names, defaults and help agree.</summary>
internal static class SharedOptions
{
    public static Option<string> Model(string description = "Model folder (Hugging Face format: config.json, *.safetensors, tokenizer.json)") =>
        new("--model", "-m") { Description = description, Required = true };

    public static Option<string> Device() => new("--device")
    {
        Description = "Where to run: cpu, cuda or cuda:N (CUDA needs a libtorch-cuda build)",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<string?> DType() => new("--dtype")
    {
        Description = "Weight and compute dtype: float32 (exact reference), bfloat16 (faster on CPUs with AMX/AVX512-BF16 and on GPUs) or float16",
    };

    public static Option<int> Threads() => new("--threads")
    {
        Description = "CPU threads per model operation (0 = libtorch's default, one per core). Small models often decode " +
                      "faster on one thread; use fewer when other work shares the cores",
        DefaultValueFactory = _ => 0,
    };

    public static Option<bool> GroupByLength() => new("--group-by-length")
    {
        Description = "Batch examples of similar length together: a batch pads to its longest row, so this trains on fewer " +
                      "positions (0.73x on the demo's tasks), but the demo's SFT learned slower with it (docs/method.md)",
    };

    /// <summary>Checks --threads and applies it before any model work.</summary>
    public static void ApplyThreads(ParseResult p, Option<int> threads)
    {
        var n = p.GetValue(threads);
        if (n is < 0 or > 1024) throw new DllmException($"--threads must be between 0 and 1024, got {n}");
        if (n > 0) TorchSharp.torch.set_num_threads(n);
    }

    private static readonly Dllm.Generation.BlockDecodeOptions BlockDefaults = new();

    public static Option<double> Threshold() => new("--threshold")
    {
        Description = $"Diffusion: unmask every position whose confidence is above this, at least the schedule's minimum per step; lower = fewer forwards, riskier (default {BlockDefaults.Threshold}, LLaDA2.0's)",
        DefaultValueFactory = _ => BlockDefaults.Threshold,
    };

    public static Option<int> MaxStepsPerBlock() => new("--max-steps-per-block")
    {
        Description = "Diffusion: step limit per block; the transfer schedule commits every position by then",
        DefaultValueFactory = _ => BlockDefaults.MaxStepsPerBlock,
    };

    public static Option<bool> StopFill() => new("--stop-fill")
    {
        Description = "Diffusion: once a stop token is decided, fill the rest of its block with it, so forwards go to the slots before it",
    };

    public static Option<bool> Credit() => new("--credit")
    {
        Description = "Diffusion: credit decoding (dInfer): a token the model keeps predicting for a slot earns credit and passes the threshold sooner",
    };

    private static readonly Dllm.Generation.EditingOptions EditingDefaults = new();

    public static Option<double?> EditingThreshold() => new("--editing-threshold")
    {
        Description = "Diffusion: LLaDA2.1 token editing, off unless given. A decided token of the current block is replaced when the " +
            $"model predicts another one with confidence above this (1.0 never edits; LLaDA2.1's default {EditingDefaults.Threshold}, its quality mode 0.5 with --threshold 0.7)",
    };

    public static Option<int?> MaxPostSteps() => new("--max-post-steps")
    {
        Description = $"Diffusion, with --editing-threshold: at most this many refinement forwards once a block has no MASK left, ending at the first that changes nothing (default {EditingDefaults.MaxPostSteps})",
    };

    /// <summary>The editing settings the two options ask for; null when editing is off.</summary>
    public static Dllm.Generation.EditingOptions? Editing(ParseResult p, Option<double?> threshold, Option<int?> postSteps)
    {
        if (p.GetValue(threshold) is not { } e)
            return p.GetValue(postSteps) is null ? null
                : throw new DllmException("--max-post-steps needs --editing-threshold (it bounds the refinement that token editing adds)");
        var editing = new Dllm.Generation.EditingOptions(e, p.GetValue(postSteps) ?? EditingDefaults.MaxPostSteps);
        editing.Validate();
        return editing;
    }

    public static Option<int?> BlockSize() => new("--block-size")
    {
        Description = $"Diffusion: tokens decoded in parallel per block (default: the checkpoint's, else {BlockDefaults.BlockSize})",
    };

    public static Option<string> Labels(Dllm.Config.LabelPosition defaultLabels) => new Option<string>("--labels")
    {
        Description = "Which output predicts a masked token: same (its own position; LLaDA2.0, the official format) or shift (the " +
                      "position before it, reusing the AR model's next-token head; Dream, Fast-dLLM v2). Recorded in config.json and honoured by every verb",
        DefaultValueFactory = _ => defaultLabels.Name(),
    }.AcceptOnlyFromAmong("same", "shift");

    /// <summary>Training verbs' --block-size: unset means the block the checkpoint was last trained at.</summary>
    public static Option<int?> TrainingBlockSize(string what) => new("--block-size")
    {
        Description = $"{what} (default: the block size the checkpoint was last trained at, else {DiffusionSettings.DefaultBlockSize}); recorded in the output's config.json",
    };

    public static int ResolveTrainingBlockSize(ParseResult p, Option<int?> block, string modelDirectory) =>
        p.GetValue(block) ?? ModelConfigReader.ReadDirectory(modelDirectory).Diffusion?.BlockSize ?? DiffusionSettings.DefaultBlockSize;

    /// <summary>--mask-min/--mask-max: the band fine-tuning draws mask rates from (sft's training masks, dpo's ELBO draws).</summary>
    public static (Option<double> Min, Option<double> Max) MaskRateBand(double min, double max, string of) =>
        (new("--mask-min") { Description = $"Lower end of the mask-rate band{of}", DefaultValueFactory = _ => min },
         new("--mask-max") { Description = $"Upper end of the mask-rate band{of}", DefaultValueFactory = _ => max });

    public static void CheckMaskRateBand(double min, double max)
    {
        if (!(min > 0 && min < max && max <= 1))
            throw new DllmException($"the mask-rate band must satisfy 0 < min < max <= 1, got [{min}, {max}]");
    }

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object instead of human-readable text" };

    public static LoadOptions LoadOptions(ParseResult p, Option<string> device, Option<string?> dtype) =>
        new(p.GetValue(device)!, p.GetValue(dtype));
}
