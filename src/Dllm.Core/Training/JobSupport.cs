using System.Text.Json;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Data;
using Dllm.IO;
using Dllm.Models;
using Dllm.Tokenization;

namespace Dllm.Training;

/// <summary>Steps every training job (pretrain, convert, fine-tune) shares.</summary>
internal static class JobSupport
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Where a job keeps checkpoints, metrics and caches unless told otherwise: "&lt;output&gt;-run".</summary>
    internal static string DefaultRunDirectory(string output) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(output)) + "-run";

    /// <summary>The run's checkpoint store and, when resuming, the checkpoint to continue from.</summary>
    internal static (CheckpointStore Store, CheckpointInfo? ResumeFrom) OpenRun(string run, bool resume)
    {
        var store = new CheckpointStore(run);
        return (store, PrepareRunDirectory(store, run, resume));
    }

    /// <summary>Checks the run folder: a fresh run needs it empty of checkpoints; a resumed one needs one.</summary>
    private static CheckpointInfo? PrepareRunDirectory(CheckpointStore store, string run, bool resume)
    {
        var latest = store.Latest();
        if (resume)
        {
            if (latest is null) throw new DllmException($"nothing to resume: {run} holds no checkpoint");
            return latest;
        }
        if (latest is not null)
            throw new DllmException($"{run} already holds checkpoints (latest: step {latest.Step}); pass --resume to continue that run, or choose another --out / --run-dir");
        return null;
    }

    /// <summary>Copies the final checkpoint's weights to the output folder, marked as a diffusion LM.</summary>
    internal static void WriteFinal(string checkpoint, string output, Func<ModelConfig, ModelConfig>? edit = null)
    {
        var config = ModelConfigReader.ReadDirectory(checkpoint);
        if (edit is not null) config = edit(config);
        var tokenizer = TextTokenizer.Load(checkpoint);
        using var reader = CheckpointReader.Open(checkpoint);
        var tensors = reader.Names.Select(n => KeyValuePair.Create(n, reader.Load(n))).ToList();
        try
        {
            ModelSaver.Save(config, tensors, tokenizer, output, TorchSharp.torch.ScalarType.Float32);
        }
        finally
        {
            foreach (var t in tensors) t.Value.Dispose();
        }
    }

    /// <summary>
    /// The label position a fine-tuning job trains with: a dLLM's own (asking for another is an error: its head
    /// was trained for it), else the requested one, else same-position.
    /// </summary>
    internal static LabelPosition Labels(LoadedModel model, LabelPosition? requested, string path)
    {
        if (model.Model.Config.Diffusion is not { } d) return requested ?? LabelPosition.Same;
        if (requested is { } r && r != d.Labels)
            throw new DllmException($"{path} was trained with {d.Labels.Name()} labels; fine-tuning it with {r.Name()} labels would relearn its head (leave --labels out)");
        return d.Labels;
    }

    /// <summary>Tokenizes (or reuses the cached tokens of) the data files inside the run folder.</summary>
    internal static TokenCorpus Corpus(IReadOnlyList<string> data, TextTokenizer tokenizer, string run, double validationFraction, long seed, ITrainingObserver observer)
    {
        if (data.Count == 0) throw new DllmException("no data files given (--data)");
        var corpus = TokenCorpus.BuildOrOpen(data, tokenizer, Path.Combine(run, "data-cache"), new CorpusOptions(validationFraction, seed),
            new Progress<long>(n => { if (n % 5000 == 0) observer.Message($"tokenized {n:N0} documents"); }));
        observer.Message($"data: {corpus.TrainTokens:N0} training tokens in {corpus.TrainDocuments:N0} documents, {corpus.ValidTokens:N0} validation tokens in {corpus.ValidDocuments:N0}");
        return corpus;
    }

    /// <summary>Records what the run was asked to do (train_config.json), printed once at start too.</summary>
    internal static void WritePlan(string run, JsonObject plan, TrainerOptions trainer)
    {
        plan["trainer"] = JsonSerializer.SerializeToNode(trainer, Indented);
        Directory.CreateDirectory(run);
        AtomicFile.WriteAllText(Path.Combine(run, "train_config.json"), plan.ToJsonString(Indented));
    }
}
