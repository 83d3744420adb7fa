using Dllm.Tokenization;

namespace Dllm.Models;

/// <summary>A checkpoint in memory: the network, its tokenizer, and the special ids decoding needs.</summary>
public sealed class LoadedModel : IDisposable
{
    public LoadedModel(CausalLM model, TextTokenizer tokenizer, string? directory = null)
    {
        Model = model;
        Tokenizer = tokenizer;
        Directory = directory;
    }

    public static LoadedModel Load(string directory, LoadOptions? options = null)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DllmException($"model folder not found: {directory}");
        var tokenizer = TextTokenizer.Load(directory);
        ModelFolderCheck.CheckTokenizer(Config.ModelConfigReader.ReadDirectory(directory), tokenizer, directory);
        var model = ModelLoader.Load(directory, options);
        return new LoadedModel(model, tokenizer, directory);
    }

    public CausalLM Model { get; private set; }
    public TextTokenizer Tokenizer { get; private set; }
    public string? Directory { get; }
    public string Name => Directory is null ? "model" : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Directory)));

    /// <summary>The MASK id: config's mask_token_id, else the tokenizer's mask token (LLaDA2 releases name it only there).</summary>
    public int? MaskTokenId => Model.Config.MaskTokenId ?? Tokenizer.MaskId ?? Tokenizer.TokenToId(MaskTokenSetup.DefaultMaskToken);

    /// <summary>Ids that end generation: config eos ids plus the tokenizer's eos and end-of-turn tokens.</summary>
    public IReadOnlyList<int> StopTokenIds => Model.Config.EosTokenIds.Concat(Tokenizer.EosIds).Distinct().ToArray();

    /// <summary>Padding id for batches (never attended to, so any valid id works).</summary>
    public int PadTokenId => Model.Config.PadTokenId ?? Tokenizer.PadId ?? StopTokenIds.FirstOrDefault();

    public bool IsDiffusion => Model.Config.IsDiffusion && MaskTokenId is not null;

    /// <summary>The block size every verb uses unless told otherwise: the one the model was last trained at, else LLaDA2.0's.</summary>
    public int DefaultBlockSize => Model.Config.Diffusion?.BlockSize ?? Config.DiffusionSettings.DefaultBlockSize;

    /// <summary>Which output predicts a masked token (same position unless the checkpoint records a shift).</summary>
    public Config.LabelPosition Labels => Model.Config.Labels;

    /// <summary>Adds a MASK token if the model has none (see <see cref="MaskTokenSetup"/>).</summary>
    public void EnsureMaskToken()
    {
        var (model, tokenizer) = MaskTokenSetup.Ensure(Model, Tokenizer);
        Model = model;
        Tokenizer = tokenizer;
    }

    public void Save(string directory, TorchSharp.torch.ScalarType? dtype = null) => ModelSaver.Save(Model, Tokenizer, directory, dtype);

    public void Dispose() => Model.Dispose();
}
