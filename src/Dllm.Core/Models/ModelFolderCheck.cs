using System.Text.RegularExpressions;
using Dllm.Config;
using Dllm.IO;
using Dllm.Models.Layers;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Everything a model folder must satisfy before it is trusted, in the order that keeps bad folders cheap:
/// config.json's ranges (<see cref="ConfigBounds"/>), then the shapes it implies against the safetensors
/// headers (no weight is read or allocated), the tokenizer against the vocabulary, and after loading one
/// pass that refuses NaN or infinite weights. Loading and <c>dllm inspect</c> run the same checks, and every
/// failure is one line naming the file and the field or tensor.
/// </summary>
public static partial class ModelFolderCheck
{
    private static readonly SafetensorsDType[] FloatingPoint = [SafetensorsDType.F32, SafetensorsDType.BF16, SafetensorsDType.F16, SafetensorsDType.F64];

    /// <summary>
    /// Checks every tensor the config implies against the headers: present, same shape, floating point; and no
    /// tensor the config does not use. The layer count is checked first from the names alone, so a config that
    /// claims a million layers fails before a skeleton of them is built.
    /// </summary>
    public static void CheckWeights(ModelConfig config, CheckpointReader reader)
    {
        CheckLayerCount(config, reader);
        var expected = ExpectedShapes(config);
        foreach (var (name, shape) in expected)
        {
            if (!reader.Contains(name))
            {
                if (CheckpointNames.MayBeAbsent(name, shape.Aggregate(1L, (n, d) => n * d), config)) continue;   // loading zero-fills these
                throw new DllmException($"{reader.Directory}: checkpoint has no tensor '{name}' (config.json implies shape [{string.Join(", ", shape)}])");
            }
            var entry = reader.Entry(name);
            if (!entry.Shape.SequenceEqual(shape))
                throw new DllmException($"{reader.FileOf(name)}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}] but config.json implies " +
                                        $"[{string.Join(", ", shape)}]{Explain(config, entry.Shape, shape)}");
            if (!FloatingPoint.Contains(entry.DType))
                throw new DllmException($"{reader.FileOf(name)}: tensor '{name}' is {entry.DType}, but model weights must be floating point ({string.Join(", ", FloatingPoint)})");
        }
        var unexpected = reader.Names.Where(n => !expected.ContainsKey(n) && !CheckpointNames.IsIgnorable(n, config)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new DllmException($"{reader.FileOf(unexpected[0])}: {unexpected.Count} tensor(s) this {config.Architecture} config does not use, e.g. '{string.Join("', '", unexpected.Take(3))}'");
    }

    /// <summary>The tokenizer must not produce ids the embedding table lacks (they would fail mid-forward).</summary>
    public static void CheckTokenizer(ModelConfig config, TextTokenizer tokenizer, string directory)
    {
        if (tokenizer.VocabSize <= config.VocabSize) return;
        var top = tokenizer.VocabSize - 1;
        throw new DllmException($"{Path.Combine(directory, "config.json")}: vocab_size {config.VocabSize} is smaller than the tokenizer's " +
                                $"{tokenizer.VocabSize} ids (id {top} is '{tokenizer.IdToToken(top)}'); the model has no embedding for the rest");
    }

    /// <summary>One pass over loaded weights: a NaN or infinity anywhere means a corrupt or diverged checkpoint.</summary>
    public static void EnsureFinite(CausalLM model, CheckpointReader reader)
    {
        using var noGrad = no_grad();
        foreach (var (name, weight) in model.state_dict())
            if (!IsFinite(weight))
                throw NotFinite(reader.Contains(name) ? reader.FileOf(name) : reader.Directory, name);
    }

    /// <summary>
    /// The whole check without building the model, for <c>dllm inspect</c>: weights are streamed from the
    /// files one tensor at a time for the finiteness pass.
    /// </summary>
    public static void Run(ModelConfig config, CheckpointReader reader, TextTokenizer? tokenizer)
    {
        // Loading's order, so both report the same first problem.
        if (tokenizer is not null) CheckTokenizer(config, tokenizer, reader.Directory);
        CheckWeights(config, reader);
        foreach (var name in reader.Names)
        {
            using var scope = NewDisposeScope();
            if (!IsFinite(reader.Load(name))) throw NotFinite(reader.FileOf(name), name);
        }
    }

    /// <summary>Tensor names and shapes of the module tree, from a skeleton on the meta device (no storage).</summary>
    private static Dictionary<string, long[]> ExpectedShapes(ModelConfig config)
    {
        using var skeleton = ModelFactory.Create(config, new Placement(ScalarType.Float32, new Device(TorchSharp.DeviceType.META)));
        return skeleton.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal);
    }

    private static void CheckLayerCount(ModelConfig config, CheckpointReader reader)
    {
        var layers = new SortedSet<long>();
        foreach (var name in reader.Names)
            if (LayerIndex().Match(name) is { Success: true } m && long.TryParse(m.Groups[1].Value, out var i) && !CheckpointNames.IsIgnorable(name, config))
                layers.Add(i);
        if (layers.Count == 0)
            throw new DllmException($"{reader.Directory}: the checkpoint holds no layer weights (model.layers.N.*), but config.json num_hidden_layers is {config.NumLayers}");
        if (layers.Count != config.NumLayers || layers.Max != config.NumLayers - 1)
            throw new DllmException($"{Path.Combine(reader.Directory, "config.json")}: num_hidden_layers is {config.NumLayers} but the weights hold " +
                                    $"{layers.Count} layer(s) (model.layers.{layers.Min} .. model.layers.{layers.Max})");
    }

    /// <summary>Names the config fields behind the dimensions that differ, e.g. " (vocab_size 100)".</summary>
    private static string Explain(ModelConfig c, long[] actual, long[] expected)
    {
        var fields = new List<(string Name, long Value)>
        {
            ("vocab_size", c.VocabSize), ("hidden_size", c.HiddenSize), ("intermediate_size", c.IntermediateSize), ("head_dim", c.HeadDim),
            ("num_attention_heads x head_dim", (long)c.NumHeads * c.HeadDim), ("num_key_value_heads x head_dim", (long)c.NumKvHeads * c.HeadDim),
            ("(num_attention_heads + 2 num_key_value_heads) x head_dim", (long)(c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim),
        };
        if (c.Moe is { } m)
            fields.AddRange([("num_experts", m.NumExperts), ("moe_intermediate_size", m.MoeIntermediateSize), ("shared expert width", m.SharedExpertIntermediateSize)]);
        if (actual.Length != expected.Length) return "";
        var named = new List<string>();
        for (var d = 0; d < expected.Length; d++)
            if (actual[d] != expected[d])
                named.AddRange(fields.Where(f => f.Value == expected[d]).Select(f => $"{f.Name} {f.Value}"));
        return named.Count == 0 ? "" : $" ({string.Join(", ", named.Distinct())})";
    }

    /// <summary>All elements finite, checked in slices so a multi-GB tensor needs only a small mask at a time.</summary>
    private static bool IsFinite(Tensor t)
    {
        if (!t.is_floating_point()) return true;
        using var scope = NewDisposeScope();
        var flat = t.is_contiguous() ? t.reshape(-1) : t.contiguous().reshape(-1);
        const long slice = 1 << 24;
        for (long start = 0; start < flat.shape[0]; start += slice)
            if (!flat.narrow(0, start, Math.Min(slice, flat.shape[0] - start)).isfinite().all().item<bool>()) return false;
        return true;
    }

    private static DllmException NotFinite(string file, string name) =>
        new($"{file}: tensor '{name}' holds NaN or infinite values; the checkpoint is corrupt or its training diverged");

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerIndex();
}
