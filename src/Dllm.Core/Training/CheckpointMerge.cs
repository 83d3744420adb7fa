using Dllm.IO;
using Dllm.Models;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>
/// Top-k checkpoint merging (METHOD.md §3): the element-wise arithmetic mean of every tensor of the k
/// checkpoints with the best validation metric, accumulated in fp64 one checkpoint at a time.
/// </summary>
public static class CheckpointMerge
{
    public static IReadOnlyList<CheckpointInfo> Select(CheckpointStore store, int k)
    {
        if (k <= 0) throw new DllmException($"top-k must be positive, got {k}");
        var ranked = store.List().Where(c => c.Metric is not null).OrderBy(c => c.Metric).ThenByDescending(c => c.Step).ToList();
        if (ranked.Count == 0)
            throw new DllmException($"{store.Root} has no checkpoint with a validation metric (train with validation data to rank checkpoints)");
        if (ranked.Count < k)
            throw new DllmException($"asked for the top {k} checkpoints but {store.Root} holds {ranked.Count} with a validation metric");
        return ranked.Take(k).ToList();
    }

    public static void Merge(IReadOnlyList<string> checkpoints, string output)
    {
        if (checkpoints.Count == 0) throw new DllmException("no checkpoints to merge");
        // Every checkpoint must be a whole, loadable model before any is averaged: a folder a kill left
        // half-written or half-deleted fails here by name instead of bending the mean.
        foreach (var path in checkpoints)
        {
            var own = Config.ModelConfigReader.ReadDirectory(path);
            using var check = CheckpointReader.Open(path);
            ModelFolderCheck.CheckWeights(own, check);
        }
        var config = Config.ModelConfigReader.ReadDirectory(checkpoints[0]);
        var tokenizer = TextTokenizer.Load(checkpoints[0]);
        var sums = new Dictionary<string, Tensor>();
        try
        {
            foreach (var path in checkpoints)
            {
                using var reader = CheckpointReader.Open(path);
                if (sums.Count > 0 && !reader.Names.ToHashSet().SetEquals(sums.Keys))
                    throw new DllmException($"{path} holds different tensors from {checkpoints[0]}: only checkpoints of one model can be merged");
                foreach (var name in reader.Names)
                {
                    using var scope = NewDisposeScope();
                    var t = reader.Load(name, ScalarType.Float64);
                    if (sums.TryGetValue(name, out var sum))
                    {
                        if (!sum.shape.SequenceEqual(t.shape)) throw new DllmException($"tensor '{name}' has different shapes in {path} and {checkpoints[0]}");
                        sum.add_(t);
                    }
                    else sums[name] = t.clone().DetachFromDisposeScope();
                }
            }
            foreach (var s in sums.Values) s.div_(checkpoints.Count);
            ModelSaver.Save(config, sums.Select(kv => KeyValuePair.Create(kv.Key, kv.Value)), tokenizer, output, ScalarType.Float32);
        }
        finally
        {
            foreach (var s in sums.Values) s.Dispose();
        }
    }
}
