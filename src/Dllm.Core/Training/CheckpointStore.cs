using System.Text.Json;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.IO;
using Dllm.Models;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>A saved training checkpoint: an HF model folder plus trainer/ (state.json, optimizer.safetensors).</summary>
public sealed record CheckpointInfo(long Step, string Path, double? Metric);

/// <summary>
/// The checkpoints of a run under RUN/checkpoints/step-NNNNNNN. Each is written whole under a temporary
/// name and renamed, so a crash leaves the previous ones intact. index.json lists them with their
/// validation metric (lower is better), which checkpoint merging ranks by. Only complete checkpoints are
/// ever listed: pruning takes a checkpoint out of the index before it deletes the folder, and whatever a
/// kill leaves behind (a staging folder, a half-deleted one) is swept away the next time the run is opened.
/// </summary>
public sealed class CheckpointStore
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private const string Prefix = "step-";
    private const string Deleting = ".deleting-";

    public CheckpointStore(string runDirectory) => Root = Path.Combine(runDirectory, "checkpoints");

    public string Root { get; }
    private string IndexPath => Path.Combine(Root, "index.json");

    /// <summary>The listed checkpoints that are complete on disk, oldest first.</summary>
    public IReadOnlyList<CheckpointInfo> List() => Listed().Where(c => IsComplete(c.Path)).ToList();

    public CheckpointInfo? Latest() => List().LastOrDefault();

    /// <summary>A checkpoint folder that holds all it needs to load and resume: config, weights, tokenizer and trainer state.</summary>
    public static bool IsComplete(string path) =>
        Directory.Exists(path)
        && File.Exists(Path.Combine(path, "config.json"))
        && File.Exists(Path.Combine(path, "tokenizer.json"))
        && File.Exists(Path.Combine(path, "trainer", "state.json"))
        && File.Exists(Path.Combine(path, "trainer", "optimizer.safetensors"))
        && (File.Exists(Path.Combine(path, "model.safetensors")) || File.Exists(Path.Combine(path, "model.safetensors.index.json")));

    public CheckpointInfo Save(long step, ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> weights, TextTokenizer tokenizer,
        JsonObject trainerState, IEnumerable<KeyValuePair<string, Tensor>> optimizerState, double? metric)
    {
        Directory.CreateDirectory(Root);
        var name = $"{Prefix}{step:D7}";
        var path = Path.Combine(Root, name);
        ModelSaver.Save(config, weights, tokenizer, path, ScalarType.Float32, writeExtra: staging =>
        {
            var trainer = Path.Combine(staging, "trainer");
            Directory.CreateDirectory(trainer);
            AtomicFile.WriteAllText(Path.Combine(trainer, "state.json"), trainerState.ToJsonString(Indented));
            SafetensorsWriter.Write(Path.Combine(trainer, "optimizer.safetensors"), optimizerState);
        });
        var info = new CheckpointInfo(step, path, metric);
        WriteIndex(List().Where(c => c.Step != step).Append(info));
        return info;
    }

    /// <summary>
    /// Deletes checkpoints that are neither among the last <paramref name="keepLast"/> nor the best <paramref name="keepBest"/>.
    /// The index is rewritten first and each folder renamed before it is deleted, so a kill at any moment
    /// leaves no listed checkpoint half-deleted (the leftovers go at the next <see cref="SweepLeftovers"/>).
    /// </summary>
    public void Prune(int keepLast, int keepBest)
    {
        if (keepLast <= 0) return;
        var all = List();
        var keep = all.TakeLast(keepLast).Concat(all.Where(c => c.Metric is not null).OrderBy(c => c.Metric).Take(keepBest)).Select(c => c.Step).ToHashSet();
        var doomed = all.Where(c => !keep.Contains(c.Step)).ToList();
        if (doomed.Count == 0) return;
        WriteIndex(all.Where(c => keep.Contains(c.Step)));
        foreach (var c in doomed) Remove(c.Path);
    }

    /// <summary>
    /// Removes what interrupted saves and prunes leave in the checkpoints folder: staging folders of writers
    /// that are no longer running, folders caught mid-deletion or mid-replacement, and step folders the index
    /// does not list. Returns the names removed.
    /// </summary>
    public IReadOnlyList<string> SweepLeftovers()
    {
        if (!Directory.Exists(Root)) return [];
        var listed = Listed().Select(c => Path.GetFileName(c.Path)).ToHashSet(StringComparer.Ordinal);
        var removed = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories(Root))
        {
            var name = Path.GetFileName(dir);
            if (!IsLeftover(name, listed)) continue;
            Remove(dir);
            removed.Add(name);
        }
        return removed;
    }

    private static bool IsLeftover(string name, HashSet<string> listed)
    {
        if (name.StartsWith(Deleting, StringComparison.Ordinal) || StagingFolders.IsAbandoned(name)) return true;
        return name.StartsWith(Prefix, StringComparison.Ordinal) && !listed.Contains(name);
    }

    /// <summary>Renames the folder out of the step-N namespace (atomic), then deletes it.</summary>
    private void Remove(string path)
    {
        var name = Path.GetFileName(path);
        var doomed = name.StartsWith(Deleting, StringComparison.Ordinal) ? path : Path.Combine(Root, $"{Deleting}{name}-{Guid.NewGuid():N}");
        if (doomed != path) Directory.Move(path, doomed);
        Directory.Delete(doomed, recursive: true);
    }

    public static JsonObject ReadState(string checkpointPath)
    {
        var path = Path.Combine(checkpointPath, "trainer", "state.json");
        if (!File.Exists(path)) throw new DllmException($"{checkpointPath} is not a training checkpoint (no trainer/state.json)");
        try
        {
            return StrictJson.Parse(File.ReadAllText(path)) as JsonObject ?? throw new DllmException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new DllmException($"{path}: invalid JSON ({e.Message})", e);
        }
    }

    /// <summary>What index.json lists, complete or not.</summary>
    private List<CheckpointInfo> Listed()
    {
        if (!File.Exists(IndexPath)) return [];
        try
        {
            var node = StrictJson.Parse(File.ReadAllText(IndexPath))?["checkpoints"] as JsonArray ?? [];
            return node.Select(n => new CheckpointInfo(n!["step"]!.GetValue<long>(), Path.Combine(Root, StepFolder(n["dir"]!.GetValue<string>())), n["metric"]?.GetValue<double>()))
                .OrderBy(c => c.Step).ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException or ArgumentException)
        {
            throw new DllmException($"{IndexPath} is corrupt ({e.Message}); move it away to start the run afresh", e);
        }
    }

    // Pruning deletes what the index names: a name that leaves the checkpoints folder must never get that far.
    private string StepFolder(string name) =>
        name.StartsWith(Prefix, StringComparison.Ordinal) && Path.GetFileName(name) == name
            ? name
            : throw new DllmException($"{IndexPath} lists '{name}', which is not a step folder of this run");

    private void WriteIndex(IEnumerable<CheckpointInfo> checkpoints)
    {
        var array = new JsonArray(checkpoints.OrderBy(c => c.Step).Select(c => (JsonNode?)new JsonObject
        {
            ["step"] = c.Step,
            ["dir"] = Path.GetFileName(c.Path),
            ["metric"] = c.Metric,
        }).ToArray());
        AtomicFile.WriteAllText(IndexPath, new JsonObject { ["checkpoints"] = array }.ToJsonString(Indented));
    }
}
