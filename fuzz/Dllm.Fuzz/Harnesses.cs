using System.Text;
using Dllm.Chat;
using Dllm.Config;
using Dllm.Data;
using Dllm.Evaluation;
using Dllm.FineTuning;
using Dllm.IO;
using Dllm.Serving;
using Dllm.Serving.OpenAi;
using Dllm.Tokenization;
using Dllm.Training;

namespace Dllm.Fuzz;

/// <summary>
/// One fuzz target per parser of user input: bytes in, the code under test called the way dllm calls it. A
/// <see cref="DllmException"/> (one line for the user) is the expected answer to bad input; any other exception,
/// a hang or a crash is a bug. The fuzzer runs these under SharpFuzz + AFL++; the test suite replays the kept
/// regression inputs through the same functions (this file is compiled into both).
/// </summary>
public static class Harnesses
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["safetensors"] = Safetensors,
        ["shard-index"] = ShardIndex,
        ["config"] = Config,
        ["tokenizer"] = Tokenizer,
        ["tokenizer-config"] = TokenizerConfig,
        ["llama2c-model"] = Llama2cModel,
        ["llama2c-tokenizer"] = Llama2cTokenizer,
        ["text-corpus"] = bytes => Corpus(bytes, "corpus.txt"),
        ["jsonl-corpus"] = bytes => Corpus(bytes, "corpus.jsonl"),
        ["parquet-corpus"] = bytes => Corpus(bytes, "corpus.parquet"),
        ["sft-data"] = bytes => ConversationReader.ReadSft(Scratch.Write("sft.jsonl", bytes)),
        ["preference-data"] = bytes => ConversationReader.ReadPreferences(Scratch.Write("pairs.jsonl", bytes)),
        ["task-data"] = bytes => TaskFile.Read(Scratch.Write("tasks.jsonl", bytes)),
        ["schedule"] = bytes => BlockSchedule.Load(Scratch.Write("schedule.json", bytes)).Validate(128),
        ["http-request"] = HttpRequest,
    };

    /// <summary>Runs one input; the user-error answer is swallowed, everything else propagates to the fuzzer.</summary>
    public static void Run(string target, byte[] input)
    {
        try
        {
            All[target](input);
        }
        catch (DllmException)
        {
        }
    }

    /// <summary>Open as loading does (header validated against the file), then touch every tensor's bytes.</summary>
    private static void Safetensors(byte[] bytes)
    {
        using var file = SafetensorsFile.Open(Scratch.Write("model.safetensors", bytes));
        long sum = 0;
        foreach (var (name, entry) in file.Entries)
            if (entry.ByteLength <= 1 << 20)
                foreach (var b in file.Bytes(name)) sum += b;
        GC.KeepAlive(sum);
    }

    private static void ShardIndex(byte[] bytes) => CheckpointLayout.ReadIndex(Scratch.Write("model.safetensors.index.json", bytes));

    private static void Config(byte[] bytes) => ModelConfigReader.Read(Encoding.UTF8.GetString(bytes));

    /// <summary>tokenizer.json from the input beside a fixed, valid tokenizer_config.json; then encode and decode.</summary>
    private static void Tokenizer(byte[] bytes)
    {
        var dir = Scratch.Folder("tokenizer");
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.json"), bytes);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), Seeds.TokenizerConfigJson);
        Exercise(TextTokenizer.Load(dir));
    }

    /// <summary>tokenizer_config.json from the input beside a fixed, valid tokenizer.json.</summary>
    private static void TokenizerConfig(byte[] bytes)
    {
        var dir = Scratch.Folder("tokenizer-config");
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), Seeds.TokenizerJson);
        File.WriteAllBytes(Path.Combine(dir, "tokenizer_config.json"), bytes);
        var tokenizer = TextTokenizer.Load(dir);
        Exercise(tokenizer);
        ChatTemplate.For(tokenizer).Render([ChatMessage.System("s"), ChatMessage.User("hi"), ChatMessage.Assistant("yo"), ChatMessage.User("again")]);
    }

    private static void Exercise(TextTokenizer tokenizer)
    {
        var ids = tokenizer.Encode("Hello world, 123 <|im_end|> ünïcödé\n\ttabs  and  spaces 😀", addSpecialTokens: true);
        tokenizer.Decode(ids);
        tokenizer.Decode(Enumerable.Range(0, Math.Min(tokenizer.VocabSize, 300)), skipSpecialTokens: true);
        foreach (var id in new[] { tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, tokenizer.MaskId })
            if (id is { } i) tokenizer.IdToToken(i);
    }

    private static void Llama2cModel(byte[] bytes) => Dllm.Import.Llama2cCheckpoint.Read(Scratch.Write("model.bin", bytes));

    /// <summary>tokenizer.bin as import-llama2c reads it, imported to a tokenizer and used.</summary>
    private static void Llama2cTokenizer(byte[] bytes) => Exercise(Llama2cTokenizerImporter.Import(Scratch.Write("tokenizer.bin", bytes)));

    private static void Corpus(byte[] bytes, string name)
    {
        foreach (var _ in CorpusReader.ReadDocuments([Scratch.Write(name, bytes)])) { }
    }

    /// <summary>A POST body through both endpoints' readers, the settings check and the chat rendering, as the server does.</summary>
    private static void HttpRequest(byte[] bytes)
    {
        var json = JsonRequest.Parse(bytes);
        try
        {
            var chat = ChatCompletionBody.Read(json);
            chat.Settings.Validate();
            // The server's role mapping (ServedModel.RenderChat): other roles are a 400 before rendering.
            var mapped = chat.Messages.Select(m => m.Role switch
            {
                "system" or "developer" => m with { Role = "system" },
                "user" or "assistant" => m,
                _ => throw new RequestError($"role '{m.Role}' is not supported"),
            }).ToList();
            ChatTemplate.ByName("chatml").Render(mapped);
        }
        catch (RequestError)
        {
        }
        var completion = CompletionBody.Read(json);
        completion.Settings.Validate();
    }
}

/// <summary>Where harnesses put the files that readers want as paths: a private folder, in memory when /dev/shm exists.</summary>
public static class Scratch
{
    private static readonly string Root = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"dllm-fuzz-{Environment.ProcessId}");

    public static string Write(string name, byte[] bytes)
    {
        Directory.CreateDirectory(Root);
        var path = Path.Combine(Root, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static string Folder(string name)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public static void Clean()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}

/// <summary>The valid companion files a harness pairs with its fuzzed one (the stories260K tokenizer, imported from llama2.c).</summary>
public static class Seeds
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fuzz-fixtures");

    public static readonly string TokenizerJson = File.ReadAllText(Path.Combine(Fixtures, "tokenizer.json"));
    public static readonly string TokenizerConfigJson = File.ReadAllText(Path.Combine(Fixtures, "tokenizer_config.json"));
}
