using Dllm.Config;
using Dllm.IO;
using Dllm.Models.Layers;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Reads an HF checkpoint folder into a <see cref="CausalLM"/>: config.json, then every tensor the
/// module tree expects, copied name for name with its shape asserted. Missing and unexpected
/// tensors are errors that name the key.
/// </summary>
public static class ModelLoader
{
    public static CausalLM Load(string directory, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        TorchRuntime.EnsureLoaded();
        var config = ModelConfigReader.ReadDirectory(directory);
        using var reader = CheckpointReader.Open(directory);
        ModelFolderCheck.CheckWeights(config, reader);
        var model = ModelFactory.Create(config, new Placement(options.ResolveDType(), options.ResolveDevice()));
        try
        {
            CopyWeights(model, reader, directory);
            ModelFolderCheck.EnsureFinite(model, reader);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    private static void CopyWeights(CausalLM model, CheckpointReader reader, string directory)
    {
        var config = model.Config;
        var expected = model.state_dict();
        using var noGrad = no_grad();
        foreach (var (name, target) in expected)
        {
            if (!reader.Contains(name))
            {
                if (CheckpointNames.MayBeAbsent(name, target.numel(), config))
                {
                    target.zero_();
                    continue;
                }
                throw new DllmException($"{directory}: checkpoint has no tensor '{name}' (expected shape [{string.Join(", ", target.shape)}])");
            }
            var entry = reader.Entry(name);
            if (!entry.Shape.SequenceEqual(target.shape))
                throw new DllmException($"{directory}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}] but the config implies [{string.Join(", ", target.shape)}]");
            using var scope = NewDisposeScope();
            target.copy_(reader.Load(name, target.dtype, target.device));
        }
        var unexpected = reader.Names.Where(n => !expected.ContainsKey(n) && !CheckpointNames.IsIgnorable(n, config)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new DllmException($"{directory}: checkpoint has {unexpected.Count} tensor(s) this {config.Architecture} config does not use, e.g. '{string.Join("', '", unexpected.Take(3))}'");
    }
}

/// <summary>How to place a loaded model. DType null keeps fp32 on CPU (exact reference numerics).</summary>
public sealed record LoadOptions(string Device = "cpu", string? DType = null)
{
    public Device ResolveDevice() => TorchRuntime.ParseDevice(Device);
    public ScalarType ResolveDType() => DType is null ? ScalarType.Float32 : TorchRuntime.ParseDType(DType);
}
