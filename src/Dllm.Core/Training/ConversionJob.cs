using System.Text.Json;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Data;
using Dllm.Diffusion;
using Dllm.IO;
using Dllm.Models;

namespace Dllm.Training;

/// <summary>Everything `dllm convert` needs to know.</summary>
public sealed record ConversionOptions
{
    // Defaults sized so that a small model (stories260K) converts in minutes on 2 CPU cores.
    public const int DefaultSequenceLength = 128;
    public const long DefaultSteps = 4000;
    public const int DefaultBatchSize = 16;

    public required string Model { get; init; }
    public required IReadOnlyList<string> Data { get; init; }
    public required string Output { get; init; }
    /// <summary>Checkpoints, metrics and the token cache; default: "&lt;output&gt;-run".</summary>
    public string? RunDirectory { get; init; }
    public string? ScheduleFile { get; init; }
    /// <summary>"wsd" (METHOD.md §3), "mdlm" (straight to B = L, no warm-up or decay) or "ar" (B = 1 throughout).</summary>
    public string ScheduleKind { get; init; } = "wsd";
    public int SequenceLength { get; init; } = DefaultSequenceLength;
    /// <summary>Block size the decay phase ends at; recorded in config.json as the default decoding block.</summary>
    public int BlockSize { get; init; } = DiffusionSettings.DefaultBlockSize;
    public TrainerOptions Trainer { get; init; } = new();
    public bool DocumentMask { get; init; } = true;
    /// <summary>Which output predicts a masked token; recorded in config.json and honoured by every later verb.</summary>
    public LabelPosition Labels { get; init; } = LabelPosition.Same;
    /// <summary>Loss variants (complementary masks, the token weight) for the conversion study; the default is the flat weight.</summary>
    public ConversionLoss Loss { get; init; } = new();
    /// <summary>Share of the schedule's steps over which the masked-embedding noise anneals to 0 (sets Trainer.EmbeddingNoiseSteps).</summary>
    public double EmbeddingNoiseFraction { get; init; } = 0.1;
    public double ValidationFraction { get; init; } = 0.02;
    public int ValidationRows { get; init; } = 32;
    public bool Resume { get; init; }

    public string ResolvedRunDirectory => RunDirectory ?? JobSupport.DefaultRunDirectory(Output);
}

/// <summary>The finished conversion: where the model went and what validation said.</summary>
public sealed record JobResult(string Output, string RunDirectory, TrainingOutcome Outcome, double? ValidationMetric, string Metric, BlockSchedule? Schedule);

/// <summary>
/// AR checkpoint -> block-diffusion checkpoint (METHOD.md §2-3): add a MASK token, tokenize the data
/// once, train with the block-diffusion objective under the WSD block schedule, then write the final
/// weights as an HF folder whose config records mask_token_id and the decoding block size.
/// </summary>
public static class ConversionJob
{
    public static JobResult Run(ConversionOptions o, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        observer ??= NullObserver.Instance;
        var run = o.ResolvedRunDirectory;
        JobSupport.Preflight(o.Output, run, o.Resume, o.Data, o.Trainer);
        if (o.SequenceLength < 2) throw new DllmException($"--seq-len must be at least 2, got {o.SequenceLength}");
        if (o.BlockSize < 1) throw new DllmException($"--block-size must be positive, got {o.BlockSize}");
        o.Loss.Validate();
        ResolveSchedule(o, o.SequenceLength).Validate(o.SequenceLength);   // a bad --steps or schedule file fails before the model loads
        var (store, resumeFrom) = JobSupport.OpenRun(run, o.Resume, observer);
        var load = new LoadOptions(o.Trainer.Device, o.Trainer.ComputeDType);
        using var loaded = LoadedModel.Load(resumeFrom?.Path ?? o.Model, load);
        if (loaded.Model.Config.IsDiffusion && resumeFrom is null)
            observer.Message($"{o.Model} is already a diffusion LM; training continues from it");
        loaded.EnsureMaskToken();
        var maskId = loaded.MaskTokenId!.Value;
        var L = o.SequenceLength;
        if (L > loaded.Model.Config.MaxPositionEmbeddings)
            throw new DllmException($"sequence length {L} exceeds the model's context ({loaded.Model.Config.MaxPositionEmbeddings})");

        var schedule = ResolveSchedule(o, L);
        schedule.Validate(L);
        // Every step count derives from the schedule, which a --schedule file may set apart from --steps.
        var trainerOptions = o.Trainer with { Steps = schedule.TotalSteps, EmbeddingNoiseSteps = (long)(schedule.TotalSteps * o.EmbeddingNoiseFraction) };
        observer.Message($"block schedule: {schedule.Describe()}");

        using var corpus = JobSupport.Corpus(o.Data, loaded.Tokenizer, run, o.ValidationFraction, o.Trainer.Seed, observer);
        var source = new PackedBatchSource(corpus.Train(L), o.Trainer.BatchSize, o.Trainer.Seed, o.DocumentMask);
        // The block the model ends at is the one it is validated and decoded at.
        var finalBlock = Math.Min(schedule.Phases[^1].BlockSize, L);
        var validator = corpus.ValidTokens >= L
            ? new DiffusionValidator(PackedBatchSource.Rows(corpus.Valid(L), o.ValidationRows), finalBlock, maskId, o.Labels, seed: o.Trainer.Seed + 1)
            : null;
        if (validator is null) observer.Message("validation split too small for one sequence: no validation metric, checkpoints cannot be ranked");

        WritePlan(run, o, schedule, trainerOptions);
        using var parent = o.Loss.ParentWeight > 0 ? LoadParent(o, load, loaded.Model.Config.VocabSize) : null;
        var objective = new BlockDiffusionObjective(schedule, maskId, new NoiseOptions(), o.Labels, o.Loss, parent?.Model);
        var trainer = new Trainer(loaded.Model, loaded.Tokenizer, objective, source, validator, trainerOptions, run, observer,
            (done, config) => config with { Diffusion = new DiffusionSettings(Math.Min(schedule.BlockSizeAt(Math.Max(0, done - 1)), L), o.Labels) });
        var outcome = trainer.Run(resumeFrom, cancel);
        if (outcome != TrainingOutcome.Completed)
            return new JobResult(o.Output, run, outcome, null, validator?.Metric ?? "", schedule);

        // The last checkpoint records the last phase's block (finalBlock) and the labels.
        var final = store.Latest()!;
        JobSupport.WriteFinal(final.Path, o.Output);
        return new JobResult(o.Output, run, outcome, final.Metric, validator?.Metric ?? "", schedule);
    }

    /// <summary>The frozen AR model the distillation term compares with: always --model as given, also when resuming.</summary>
    private static LoadedModel LoadParent(ConversionOptions o, LoadOptions load, long vocab)
    {
        var parent = LoadedModel.Load(o.Model, load);
        if (parent.Model.Config.IsDiffusion)
        {
            parent.Dispose();
            throw new DllmException($"--parent-weight compares with an AR parent's next-token predictions, but {o.Model} is already a diffusion LM");
        }
        if (parent.Model.Config.VocabSize > vocab)
        {
            parent.Dispose();
            throw new DllmException($"the parent's vocabulary ({parent.Model.Config.VocabSize}) is larger than the converted model's ({vocab})");
        }
        parent.Model.eval();
        foreach (var p in parent.Model.parameters()) p.requires_grad = false;
        return parent;
    }

    private static BlockSchedule ResolveSchedule(ConversionOptions o, int L)
    {
        if (o.ScheduleFile is not null) return BlockSchedule.Load(o.ScheduleFile);
        var steps = o.Trainer.Steps;
        return o.ScheduleKind switch
        {
            "wsd" => BlockSchedule.Wsd(steps, L, o.BlockSize),
            "mdlm" => BlockSchedule.Constant(steps, L, "mdlm"),
            "ar" => BlockSchedule.Constant(steps, 1, "ar"),
            _ => throw new DllmException($"unknown schedule '{o.ScheduleKind}': use wsd, mdlm or ar, or pass --schedule FILE"),
        };
    }

    private static void WritePlan(string run, ConversionOptions o, BlockSchedule schedule, TrainerOptions t) =>
        JobSupport.WritePlan(run, new JsonObject
        {
            ["job"] = "convert",
            ["model"] = Path.GetFullPath(o.Model),
            ["data"] = new JsonArray(o.Data.Select(d => (JsonNode?)Path.GetFullPath(d)).ToArray()),
            ["sequence_length"] = o.SequenceLength,
            ["block_size"] = o.BlockSize,
            ["document_mask"] = o.DocumentMask,
            ["labels"] = o.Labels.Name(),
            ["complementary"] = o.Loss.Complementary,
            ["weighting"] = o.Loss.Weighting.Name(),
            ["parent_weight"] = o.Loss.ParentWeight,
            ["schedule"] = schedule.ToJson(),
        }, t, o.Resume);
}
