using Dllm.Config;
using Dllm.IO;
using Dllm.Runtime;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Writes a model as an HF checkpoint folder (config.json, safetensors, tokenizer files). The folder
/// is assembled under a temporary name beside the target and renamed into place, so a crash never
/// leaves a half-written checkpoint where a good one was.
/// </summary>
public static class ModelSaver
{
    public static void Save(CausalLM model, TextTokenizer tokenizer, string directory, ScalarType? dtype = null, long maxShardBytes = 5_000_000_000)
    {
        var target = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(target) ?? ".";
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.saving-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            WriteInto(model, tokenizer, staging, dtype, maxShardBytes);
            ReplaceDirectory(staging, target);
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    private static void WriteInto(CausalLM model, TextTokenizer tokenizer, string dir, ScalarType? dtype, long maxShardBytes)
    {
        var saveType = dtype ?? model.Placement.DType;
        using (var scope = NewDisposeScope())
        {
            var tensors = model.state_dict()
                .Select(kv => new KeyValuePair<string, Tensor>(kv.Key,
                    // The router bias stays fp32 whatever the weights' dtype, as in the published checkpoints.
                    kv.Key.EndsWith("expert_bias", StringComparison.Ordinal) ? kv.Value.cpu() : kv.Value.to_type(saveType).cpu()))
                .ToList();
            SafetensorsWriter.WriteCheckpoint(dir, tensors, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        }
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), ModelConfigWriter.ToJsonString(model.Config, TorchRuntime.DTypeName(saveType)));
        tokenizer.Save(dir);
    }

    /// <summary>Files a checkpoint folder may hold; anything else means the folder is not ours to replace.</summary>
    private static bool IsCheckpointFile(string name) =>
        name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal)
        || name is "tokenizer.model" or "README.md" or "merges.txt" or "vocab.json";

    private static void ReplaceDirectory(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }
        var foreign = Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName).FirstOrDefault(n => !IsCheckpointFile(n!));
        if (foreign is not null)
            throw new DllmException($"refusing to overwrite {target}: it holds '{foreign}', which is not part of a checkpoint; choose an empty or new folder");
        var old = target + $".old-{Guid.NewGuid():N}";
        Directory.Move(target, old);
        Directory.Move(staging, target);
        Directory.Delete(old, recursive: true);
    }
}
