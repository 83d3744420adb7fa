using System.Text.Json.Nodes;
using Dllm.Chat;
using Dllm.Config;
using Dllm.Models;
using Dllm.Training;

namespace Dllm.FineTuning;

/// <summary>Everything `dllm dpo` needs.</summary>
public sealed record DpoOptions
{
    public required string Model { get; init; }
    /// <summary>The frozen reference; null: the starting policy itself (the usual choice).</summary>
    public string? Reference { get; init; }
    public required string Data { get; init; }
    public required string Output { get; init; }
    public string? RunDirectory { get; init; }
    public string? Template { get; init; }
    public DpoSettings Settings { get; init; } = new();
    public int MaxLength { get; init; } = 512;
    /// <summary>Batch pairs of similar length together so batches pad less (off by default, as for SFT: <see cref="SftOptions.GroupByLength"/>).</summary>
    public bool GroupByLength { get; init; }
    public TrainerOptions Trainer { get; init; } = new();
    public bool Resume { get; init; }

    public string ResolvedRunDirectory => RunDirectory ?? JobSupport.DefaultRunDirectory(Output);
}

/// <summary>Preference optimisation of a diffusion LM with the ELBO surrogate (METHOD.md §4).</summary>
public static class DpoJob
{
    public static JobResult Run(DpoOptions o, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        observer ??= NullObserver.Instance;
        var run = o.ResolvedRunDirectory;
        JobSupport.Preflight(o.Output, run, o.Resume, [o.Data], o.Trainer);
        var (store, resumeFrom) = JobSupport.OpenRun(run, o.Resume, observer);
        var load = new LoadOptions(o.Trainer.Device, o.Trainer.ComputeDType);
        using var policy = LoadedModel.Load(resumeFrom?.Path ?? o.Model, load);
        using var reference = LoadedModel.Load(o.Reference ?? o.Model, load);
        var maskId = policy.MaskTokenId ?? throw new DllmException($"{o.Model} has no MASK token: DPO here trains diffusion LMs (convert or SFT it first)");
        if (reference.Model.Config.VocabSize != policy.Model.Config.VocabSize)
            throw new DllmException($"policy and reference vocabularies differ ({policy.Model.Config.VocabSize} vs {reference.Model.Config.VocabSize})");
        if (reference.Labels != policy.Labels)
            throw new DllmException($"policy and reference read their logits differently (labels {policy.Labels.Name()} vs {reference.Labels.Name()})");
        reference.Model.eval();
        foreach (var p in reference.Model.parameters()) p.requires_grad = false;

        var encoder = new ExampleEncoder(policy.Tokenizer, o.Template is null ? null : ChatTemplate.ByName(o.Template), Math.Min(o.MaxLength, policy.Model.Config.MaxPositionEmbeddings));
        var pairs = ConversationReader.ReadPreferences(o.Data).Select(encoder.Encode).ToList();
        observer.Message($"{pairs.Count:N0} preference pairs; beta {o.Settings.Beta}, {o.Settings.ElboSamples} ELBO draws per sequence, block {o.Settings.BlockSize}");
        var pad = policy.Tokenizer.EosId ?? encoder.EndOfTurnId;
        var source = new PreferenceBatchSource(pairs, o.Trainer.BatchSize, o.Settings.BlockSize, pad, o.Trainer.Seed, o.GroupByLength);
        JobSupport.WritePlan(run, new JsonObject
        {
            ["job"] = "dpo",
            ["model"] = Path.GetFullPath(o.Model),
            ["reference"] = Path.GetFullPath(o.Reference ?? o.Model),
            ["data"] = Path.GetFullPath(o.Data),
            ["beta"] = o.Settings.Beta,
            ["elbo_samples"] = o.Settings.ElboSamples,
            ["block_size"] = o.Settings.BlockSize,
            ["mask_rate_band"] = new JsonArray(o.Settings.MinRate, o.Settings.MaxRate),
            ["chosen_nll_weight"] = o.Settings.ChosenNllWeight,
            ["elbo_padding"] = o.Settings.ScorePadding,
            ["template"] = o.Template,
            ["max_length"] = o.MaxLength,
            ["group_by_length"] = o.GroupByLength,
        }, o.Trainer, o.Resume);
        var trainer = new Trainer(policy.Model, policy.Tokenizer, new DpoObjective(reference.Model, o.Settings, maskId, policy.Labels), source, null, o.Trainer, run, observer,
            (_, c) => c with { Diffusion = new Config.DiffusionSettings(o.Settings.BlockSize, policy.Labels) });
        var outcome = trainer.Run(resumeFrom, cancel);
        if (outcome == TrainingOutcome.Completed)
            JobSupport.WriteFinal(store.Latest()!.Path, o.Output);
        return new JobResult(o.Output, run, outcome, null, "", null);
    }
}
