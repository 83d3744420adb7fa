using TorchSharp;

namespace Dllm.IO;

/// <summary>
/// The tensors of a model folder, wherever they live: model.safetensors, the shards named by
/// model.safetensors.index.json, or else every *.safetensors file. The order of preference is
/// transformers' own, so we read the same weights from_pretrained would.
/// </summary>
public sealed class CheckpointReader : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _owner;
    private readonly List<string> _names;

    public string Directory { get; }

    /// <summary>Every tensor name, file by file in data order.</summary>
    public IReadOnlyCollection<string> Names { get; }

    private CheckpointReader(string directory, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner, List<string> names)
    {
        Directory = directory;
        _files = files;
        _owner = owner;
        _names = names;
        Names = _names.AsReadOnly();
    }

    public static CheckpointReader Open(string directory)
    {
        var dir = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(dir))
            throw new DllmException($"checkpoint folder '{dir}' does not exist");

        var single = Path.Combine(dir, CheckpointLayout.SingleFile);
        var index = Path.Combine(dir, CheckpointLayout.IndexFile);
        if (File.Exists(single)) return FromFiles(dir, [single], null);
        if (File.Exists(index)) return FromIndex(dir, index);

        var any = System.IO.Directory.GetFiles(dir, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        if (any.Count == 0)
            throw new DllmException($"checkpoint folder '{dir}' holds no {CheckpointLayout.SingleFile}, no {CheckpointLayout.IndexFile} and no other *.safetensors file");
        return FromFiles(dir, any, null);
    }

    private static CheckpointReader FromIndex(string dir, string index)
    {
        var weightMap = CheckpointLayout.ReadIndex(index);
        var shards = weightMap.Select(p => p.Value).Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var shard in shards)
        {
            if (!File.Exists(Path.Combine(dir, shard)))
            {
                var example = weightMap.First(p => p.Value == shard).Key;
                throw new DllmException($"'{index}' puts tensor '{example}' in '{shard}', but that file is missing from '{dir}'");
            }
        }
        return FromFiles(dir, shards.Select(s => Path.Combine(dir, s)).ToList(), (index, weightMap));
    }

    private static CheckpointReader FromFiles(string dir, List<string> paths, (string Path, List<KeyValuePair<string, string>> Map)? index)
    {
        var files = new List<SafetensorsFile>();
        try
        {
            var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            var names = new List<string>();
            foreach (var path in paths)
            {
                var file = SafetensorsFile.Open(path);
                files.Add(file);
                foreach (var name in file.Entries.Keys)
                {
                    // Two copies of a weight mean a stale or mixed folder; picking one silently could load the wrong model.
                    if (owner.TryGetValue(name, out var other))
                        throw new DllmException($"tensor '{name}' is in both '{other.Path}' and '{file.Path}'; the checkpoint folder '{dir}' mixes two saves");
                    owner[name] = file;
                    names.Add(name);
                }
            }
            if (index is { } ix) CheckIndexAgrees(ix.Path, ix.Map, owner);
            return new CheckpointReader(dir, files, owner, names);
        }
        catch
        {
            foreach (var file in files) file.Dispose();
            throw;
        }
    }

    private static void CheckIndexAgrees(string indexPath, List<KeyValuePair<string, string>> map, Dictionary<string, SafetensorsFile> owner)
    {
        foreach (var (name, shard) in map)
        {
            if (!owner.TryGetValue(name, out var file) || Path.GetFileName(file.Path) != shard)
                throw new DllmException($"'{indexPath}' puts tensor '{name}' in '{shard}', but that file does not hold it");
        }
    }

    public bool Contains(string name) => _owner.ContainsKey(name);

    public TensorEntry Entry(string name) => Owner(name).Entries[name];

    /// <summary>The path of the file holding <paramref name="name"/>, for errors that name it.</summary>
    public string FileOf(string name) => Owner(name).Path;

    public torch.Tensor Load(string name, torch.ScalarType? dtype = null, torch.Device? device = null) =>
        Owner(name).Load(name, dtype, device);

    private SafetensorsFile Owner(string name) =>
        _owner.TryGetValue(name, out var file) ? file : throw new DllmException($"tensor '{name}' is not in the checkpoint '{Directory}'");

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }
}
