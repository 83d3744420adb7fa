using TorchSharp;

namespace Dllm.IO;

/// <summary>
/// Writes tensors as safetensors files and Hugging Face checkpoint folders. Every file goes
/// through <see cref="AtomicFile"/>, so an interrupted save never leaves a torn file behind.
/// </summary>
public static class SafetensorsWriter
{
    private sealed record Pending(string Name, torch.Tensor Tensor, SafetensorsDType DType, long[] Shape, long Bytes);

    /// <summary>
    /// Writes one file: tensors contiguous, in the given order, in their own dtype (bits unchanged).
    /// Metadata gets "format": "pt" unless it sets "format" itself, because transformers refuses
    /// safetensors files without it.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var full = Path.GetFullPath(path);
        WriteFile(full, Collect(tensors, full), metadata);
    }

    /// <summary>
    /// Writes model.safetensors when the tensor data fits in <paramref name="maxShardBytes"/>, else
    /// model-0000i-of-0000N.safetensors shards and model.safetensors.index.json, as save_pretrained
    /// does. <paramref name="metadata"/> goes into every file's header. Files of an earlier save in
    /// the folder are removed only once the new ones are complete; each file is replaced atomically,
    /// but a crash mid-save can leave new shards beside the old index when the shard names coincide.
    /// </summary>
    public static void WriteCheckpoint(string directory, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, long maxShardBytes = 5_000_000_000, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        var dir = Path.GetFullPath(directory);
        var items = Collect(tensors, dir);
        try
        {
            System.IO.Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DllmException($"cannot create checkpoint folder '{dir}': {e.Message}", e);
        }

        var shards = ShardPlan.Split(items.Select(i => i.Bytes).ToList(), maxShardBytes);
        var written = new HashSet<string>(StringComparer.Ordinal);
        if (shards.Count <= 1)
        {
            WriteFile(Path.Combine(dir, CheckpointLayout.SingleFile), items, metadata);
            written.Add(CheckpointLayout.SingleFile);
        }
        else
        {
            var weightMap = new List<KeyValuePair<string, string>>();
            for (var s = 0; s < shards.Count; s++)
            {
                var shardName = CheckpointLayout.ShardName(s + 1, shards.Count);
                var part = items.GetRange(shards[s].Start, shards[s].Count);
                WriteFile(Path.Combine(dir, shardName), part, metadata);
                written.Add(shardName);
                weightMap.AddRange(part.Select(i => new KeyValuePair<string, string>(i.Name, shardName)));
            }
            // The index goes last: until it is renamed into place, it still describes complete old files.
            AtomicFile.WriteAllText(Path.Combine(dir, CheckpointLayout.IndexFile), CheckpointLayout.SerializeIndex(items.Sum(i => i.Bytes), weightMap));
            written.Add(CheckpointLayout.IndexFile);
        }
        RemoveStale(dir, written);
    }

    /// <summary>Reads the enumeration once, up front: the header needs every shape before any data is written.</summary>
    private static List<Pending> Collect(IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, string target)
    {
        var items = new List<Pending>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (string.IsNullOrEmpty(name))
                throw new DllmException($"cannot write '{target}': a tensor has an empty name");
            if (name == SafetensorsHeader.MetadataKey)
                throw new DllmException($"cannot write '{target}': '{name}' is reserved and cannot name a tensor");
            if (!seen.Add(name))
                throw new DllmException($"cannot write '{target}': tensor '{name}' is given twice");
            if (tensor is null)
                throw new DllmException($"cannot write '{target}': tensor '{name}' is null");
            var dtype = SafetensorsDTypes.FromScalarType(tensor.dtype, $"tensor '{name}'");
            items.Add(new Pending(name, tensor, dtype, tensor.shape, tensor.numel() * dtype.ElementSize()));
        }
        return items;
    }

    private static void WriteFile(string path, IReadOnlyList<Pending> items, IReadOnlyDictionary<string, string>? metadata)
    {
        var entries = new List<TensorEntry>(items.Count);
        long offset = 0;
        foreach (var item in items)
        {
            entries.Add(new TensorEntry(item.Name, item.DType, item.Shape, offset, offset + item.Bytes));
            offset += item.Bytes;
        }
        var header = SafetensorsHeader.Encode(entries, WithFormat(metadata));
        AtomicFile.Write(path, stream =>
        {
            stream.Write(header);
            foreach (var item in items) WriteData(stream, item);
        });
    }

    private static void WriteData(Stream stream, Pending item)
    {
        using var scope = torch.NewDisposeScope();
        var source = item.Tensor;
        if (source.device_type != DeviceType.CPU) source = source.cpu();
        if (!source.is_contiguous()) source = source.contiguous();
        long written = 0;
        TensorChunks.ForEach(source, (_, chunk) =>
        {
            stream.Write(chunk);
            written += chunk.Length;
        });
        // The header was written from the sizes seen in Collect; a tensor resized since would corrupt every later offset.
        if (written != item.Bytes)
            throw new InvalidOperationException($"tensor '{item.Name}' changed size while being written ({item.Bytes} bytes expected, {written} written)");
    }

    private static Dictionary<string, string> WithFormat(IReadOnlyDictionary<string, string>? metadata)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
            foreach (var (key, value) in metadata) result[key] = value;
        return result;
    }

    private static void RemoveStale(string dir, HashSet<string> written)
    {
        var stale = System.IO.Directory.EnumerateFiles(dir)
            .Select(Path.GetFileName)
            .Where(name => name is not null && CheckpointLayout.IsCheckpointFile(name) && !written.Contains(name))
            .ToList();
        // A leftover model.safetensors would shadow new shards (readers prefer it), so it goes first.
        foreach (var name in stale.OrderBy(n => n == CheckpointLayout.SingleFile ? 0 : 1))
        {
            try
            {
                File.Delete(Path.Combine(dir, name!));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DllmException($"saved the new checkpoint in '{dir}' but could not remove '{name}' left by an earlier save: {e.Message}", e);
            }
        }
    }
}
