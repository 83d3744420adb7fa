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
/// validation metric (lower is better), which checkpoint merging ranks by.
/// </summary>
public sealed class CheckpointStore(string runDirectory)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public string Root { get; } = Path.Combine(runDirectory, "checkpoints");
    private string IndexPath => Path.Combine(Root, "index.json");

    public IReadOnlyList<CheckpointInfo> List()
    {
        if (!File.Exists(IndexPath)) return [];
        var node = JsonNode.Parse(File.ReadAllText(IndexPath))?["checkpoints"]?.AsArray() ?? [];
        return node.Select(n => new CheckpointInfo(n!["step"]!.GetValue<long>(), Path.Combine(Root, n["dir"]!.GetValue<string>()), n["metric"]?.GetValue<double>()))
            .Where(c => Directory.Exists(c.Path)).OrderBy(c => c.Step).ToList();
    }

    public CheckpointInfo? Latest() => List().LastOrDefault();

    public CheckpointInfo Save(long step, ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> weights, TextTokenizer tokenizer,
        JsonObject trainerState, IEnumerable<KeyValuePair<string, Tensor>> optimizerState, double? metric)
    {
        Directory.CreateDirectory(Root);
        var name = $"step-{step:D7}";
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

    /// <summary>Deletes checkpoints that are neither among the last <paramref name="keepLast"/> nor the best <paramref name="keepBest"/>.</summary>
    public void Prune(int keepLast, int keepBest)
    {
        if (keepLast <= 0) return;
        var all = List();
        var keep = all.TakeLast(keepLast).Concat(all.Where(c => c.Metric is not null).OrderBy(c => c.Metric).Take(keepBest)).Select(c => c.Step).ToHashSet();
        foreach (var c in all.Where(c => !keep.Contains(c.Step))) Directory.Delete(c.Path, recursive: true);
        WriteIndex(all.Where(c => keep.Contains(c.Step)));
    }

    public static JsonObject ReadState(string checkpointPath)
    {
        var path = Path.Combine(checkpointPath, "trainer", "state.json");
        if (!File.Exists(path)) throw new DllmException($"{checkpointPath} is not a training checkpoint (no trainer/state.json)");
        return JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new DllmException($"{path}: empty trainer state");
    }

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
