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

    /// <summary>
    /// Checks made before anything is loaded or trained, in the order a user meets them: the output folder,
    /// the data files, then the training options. A run must not fail on these after hours of work.
    /// </summary>
    internal static void Preflight(string output, string run, bool resume, IReadOnlyList<string> data, TrainerOptions trainer)
    {
        if (File.Exists(output)) throw new DllmException($"--out {output} is a file; name a new folder for the model");
        if (!resume) PrepareRunDirectory(new CheckpointStore(run), run, resume: false);   // "pass --resume" says more than "--out is not empty"
        CheckOutput(output, resume);
        if (data.Count == 0) throw new DllmException("no data files given (--data)");
        foreach (var file in data)
        {
            if (Directory.Exists(file)) throw new DllmException($"data file '{file}' is a folder; list the files in it instead");
            if (!File.Exists(file)) throw new DllmException($"data file not found: {file}");
        }
        trainer.Validate();
    }

    /// <summary>The output must be a new or empty folder: never a file, never a folder with something in it (it would be lost).</summary>
    internal static void CheckOutput(string output, bool resume = false)
    {
        if (string.IsNullOrWhiteSpace(output)) throw new DllmException("--out must name a folder");
        if (File.Exists(output)) throw new DllmException($"--out {output} is a file; name a new folder for the model");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).FirstOrDefault() is { } first)
            throw new DllmException(resume && File.Exists(Path.Combine(output, "config.json"))
                ? $"--out {output} already holds a model: this run has finished, so there is nothing to resume"
                : $"--out {output} is not empty (it holds '{Path.GetFileName(first)}'); name a new folder, or remove this one first");
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(output)));
        for (var up = parent; up is not null; up = Path.GetDirectoryName(up))
        {
            if (File.Exists(up)) throw new DllmException($"--out {output} cannot be created: '{up}' is a file");
            if (Directory.Exists(up)) break;
        }
    }

    /// <summary>The run's checkpoint store and, when resuming, the checkpoint to continue from. Leftovers of a killed run are swept first.</summary>
    internal static (CheckpointStore Store, CheckpointInfo? ResumeFrom) OpenRun(string run, bool resume, ITrainingObserver? observer = null)
    {
        var store = new CheckpointStore(run);
        var swept = store.SweepLeftovers();
        if (swept.Count > 0) observer?.Message($"removed {swept.Count} unfinished checkpoint folder(s) left by an interrupted run: {string.Join(", ", swept)}");
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
        StagingFolders.SweepFor(output);
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

    /// <summary>
    /// Records what the run was asked to do (train_config.json). A resumed run must be asked the same: a changed
    /// loss, schedule, seed or optimiser setting would silently make it another run, so the difference is refused
    /// by name. Settings that leave the arithmetic alone (device, logging, checkpoint cadence, --stop-after) may change.
    /// </summary>
    internal static void WritePlan(string run, JsonObject plan, TrainerOptions trainer, bool resuming)
    {
        plan["trainer"] = JsonSerializer.SerializeToNode(trainer, Indented);
        var path = Path.Combine(run, "train_config.json");
        if (resuming && File.Exists(path) && ReadPlan(path) is JsonObject started)
        {
            var changed = PlanDifferences(started, plan);
            if (changed.Count > 0)
                throw new DllmException($"{run} was started with other settings, so resuming would not continue that run: " +
                    string.Join("; ", changed) + ". Pass the settings it started with (its train_config.json), or start a new run");
        }
        Directory.CreateDirectory(run);
        AtomicFile.WriteAllText(path, plan.ToJsonString(Indented));
    }

    private static JsonNode? ReadPlan(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new DllmException($"{path} is not valid JSON ({e.Message}): it records what the run was started with, so resuming cannot check it; restore it or start a new run"); }
    }

    // The trainer settings a step's arithmetic depends on; the others (device, cadence, stop-after) may change on resume.
    private static readonly string[] TrainerSettingsThatShapeTheRun =
        ["Steps", "BatchSize", "GradientAccumulation", "Replicas", "LearningRate", "PeakLearningRate", "AdamW", "ClipNorm",
         "ComputeDType", "Seed", "EmbeddingNoise", "EmbeddingNoiseSteps", "SpikeFactor", "SpikeWindow"];

    /// <summary>
    /// "key was X, now Y" for every setting of <paramref name="now"/> that differs from the run's start. A setting the
    /// start did not record is taken at the value older builds implied, where one is known, and otherwise not compared.
    /// </summary>
    internal static List<string> PlanDifferences(JsonObject started, JsonObject now)
    {
        var changed = new List<string>();
        void Compare(string name, JsonNode? was, JsonNode? isNow)
        {
            if (was is null) return;
            if (!JsonNode.DeepEquals(was, isNow))
                changed.Add($"{name} was {was.ToJsonString()}, now {isNow?.ToJsonString() ?? "unset"}");
        }
        foreach (var (key, value) in now)
        {
            if (key == "trainer") continue;
            Compare(key, started[key]?.DeepClone() ?? ImpliedByOlderPlans(started, key), value);
        }
        if (now["trainer"] is JsonObject trainerNow)
            foreach (var key in TrainerSettingsThatShapeTheRun)
                Compare(key, started["trainer"]?[key], trainerNow[key]);
        return changed;
    }

    /// <summary>What a run started before a setting was recorded ran with: a conversion 1/t (unless its "flat_weight"
    /// said otherwise) and no parent term, DPO an ELBO that counted the padding.</summary>
    private static JsonNode? ImpliedByOlderPlans(JsonObject started, string key) => (started["job"]?.GetValue<string>(), key) switch
    {
        ("convert", "weighting") => started["flat_weight"]?.GetValue<bool>() == true ? "flat" : "elbo",
        ("convert", "parent_weight") => 0.0,
        ("dpo", "elbo_padding") => true,   // DPO counted the padding in its ELBO before the option
        _ => null,
    };
}
