using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using Dllm.Tokenization;

namespace Dllm.Training;

/// <summary>Everything `dllm pretrain` needs: a tokenizer, an architecture and data.</summary>
public sealed record PretrainOptions
{
    /// <summary>Folder holding tokenizer.json (+ tokenizer_config.json).</summary>
    public required string Tokenizer { get; init; }
    /// <summary>An HF config.json for the new model; vocab_size is set from the tokenizer when absent.</summary>
    public required JsonObject Config { get; init; }
    public required IReadOnlyList<string> Data { get; init; }
    public required string Output { get; init; }
    public string? RunDirectory { get; init; }
    public int SequenceLength { get; init; } = 256;
    public TrainerOptions Trainer { get; init; } = new();
    public double ValidationFraction { get; init; } = 0.02;
    public int ValidationRows { get; init; } = 32;
    public bool Resume { get; init; }

    public string ResolvedRunDirectory => RunDirectory ?? JobSupport.DefaultRunDirectory(Output);
}

/// <summary>Trains a small AR model from scratch (the demo's starting point) and writes it as an HF folder.</summary>
public static class PretrainJob
{
    public static JobResult Run(PretrainOptions o, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        observer ??= NullObserver.Instance;
        var run = o.ResolvedRunDirectory;
        JobSupport.Preflight(o.Output, run, o.Resume, o.Data, o.Trainer);
        if (o.SequenceLength < 2) throw new DllmException($"--seq-len must be at least 2, got {o.SequenceLength}");
        var (store, resumeFrom) = JobSupport.OpenRun(run, o.Resume, observer);
        var tokenizer = TextTokenizer.Load(resumeFrom?.Path ?? o.Tokenizer);
        CausalLM model;
        if (resumeFrom is not null) model = ModelLoader.Load(resumeFrom.Path, new LoadOptions(o.Trainer.Device, o.Trainer.ComputeDType));
        else
        {
            var json = (JsonObject)o.Config.DeepClone();
            json["vocab_size"] ??= tokenizer.VocabSize;
            if (tokenizer.EosId is { } eos) json["eos_token_id"] ??= eos;
            if (tokenizer.BosId is { } bos) json["bos_token_id"] ??= bos;
            var config = ModelConfigReader.Read(json.ToJsonString(), "model config");
            if (config.VocabSize < tokenizer.VocabSize)
                throw new DllmException($"vocab_size {config.VocabSize} is smaller than the tokenizer's {tokenizer.VocabSize} tokens");
            model = ModelFactory.Create(config, new Placement(TorchRuntime.ParseDType(o.Trainer.ComputeDType), TorchRuntime.ParseDevice(o.Trainer.Device)));
            ModelInit.Randomize(model, o.Trainer.Seed);
        }
        using var _ = model;
        if (o.SequenceLength > model.Config.MaxPositionEmbeddings)
            throw new DllmException($"sequence length {o.SequenceLength} exceeds max_position_embeddings {model.Config.MaxPositionEmbeddings}");

        using var corpus = JobSupport.Corpus(o.Data, tokenizer, run, o.ValidationFraction, o.Trainer.Seed, observer);
        var source = new PackedBatchSource(corpus.Train(o.SequenceLength), o.Trainer.BatchSize, o.Trainer.Seed);
        var validator = corpus.ValidTokens >= o.SequenceLength
            ? new ArValidator(PackedBatchSource.Rows(corpus.Valid(o.SequenceLength), o.ValidationRows))
            : null;
        JobSupport.WritePlan(run, new JsonObject
        {
            ["job"] = "pretrain",
            // The config asked for, not the model's: a resumed run loads its model from a checkpoint whose config.json
            // the saver filled in, and the plan must compare equal when the same command is run again.
            ["config"] = o.Config.DeepClone(),
            ["data"] = new JsonArray(o.Data.Select(d => (JsonNode?)Path.GetFullPath(d)).ToArray()),
            ["sequence_length"] = o.SequenceLength,
        }, o.Trainer, o.Resume);
        var trainer = new Trainer(model, tokenizer, new ArObjective(), source, validator, o.Trainer, run, observer);
        var outcome = trainer.Run(resumeFrom, cancel);
        if (outcome == TrainingOutcome.Completed)
            JobSupport.WriteFinal(store.Latest()!.Path, o.Output);
        return new JobResult(o.Output, run, outcome, store.Latest()?.Metric, validator?.Metric ?? "", null);
    }
}
