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
    public static void Save(CausalLM model, TextTokenizer tokenizer, string directory, ScalarType? dtype = null, long maxShardBytes = 5_000_000_000) =>
        Save(model.Config, model.state_dict(), tokenizer, directory, dtype ?? model.Placement.DType, maxShardBytes);

    /// <summary>
    /// Writes the given tensors (names as in the checkpoint) with a config and tokenizer. Trainers pass
    /// their fp32 master weights here; <paramref name="writeExtra"/> adds files (trainer state) into the
    /// staging folder so they appear atomically with the model.
    /// </summary>
    public static void Save(ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> tensors, TextTokenizer tokenizer, string directory,
        ScalarType dtype, long maxShardBytes = 5_000_000_000, Action<string>? writeExtra = null)
    {
        var target = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(target) ?? ".";
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.saving-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            WriteInto(config, tensors, tokenizer, staging, dtype, maxShardBytes);
            writeExtra?.Invoke(staging);
            ReplaceDirectory(staging, target);
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    private static void WriteInto(ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> source, TextTokenizer tokenizer, string dir, ScalarType saveType, long maxShardBytes)
    {
        using (var scope = NewDisposeScope())
        {
            var tensors = source
                .Select(kv => new KeyValuePair<string, Tensor>(kv.Key,
                    // The router bias stays fp32 whatever the weights' dtype, as in the published checkpoints.
                    kv.Key.EndsWith("expert_bias", StringComparison.Ordinal) ? kv.Value.detach().cpu() : kv.Value.detach().to_type(saveType).cpu()))
                .ToList();
            SafetensorsWriter.WriteCheckpoint(dir, tensors, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        }
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), ModelConfigWriter.ToJsonString(config, TorchRuntime.DTypeName(saveType)));
        tokenizer.Save(dir);
    }

    /// <summary>Files a checkpoint folder may hold; anything else means the folder is not ours to replace.</summary>
    private static bool IsCheckpointFile(string name) =>
        name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal)
        || name is "tokenizer.model" or "README.md" or "merges.txt" or "vocab.json" or "trainer";

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
