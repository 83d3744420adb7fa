using Dllm.Models;
using Dllm.Tests.Tokenization;
using Dllm.Tokenization;

namespace Dllm.Tests;

/// <summary>Tiny checkpoints of every architecture written as real HF folders, with a byte-level tokenizer.</summary>
public static class TinyCheckpoints
{
    public static TextTokenizer Tokenizer()
    {
        using var dir = new TempDirectory();
        return TinyByteLevelTokenizer.Load(dir, TinyByteLevelTokenizer.Json(), TinyByteLevelTokenizer.TokenizerConfigJson());
    }

    public static string Write(string arch, string directory, long seed = 1)
    {
        using var model = TinyConfigs.Model(arch, seed);
        ModelSaver.Save(model, Tokenizer(), directory);
        return directory;
    }
}
