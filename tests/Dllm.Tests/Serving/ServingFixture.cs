using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Serving.Http;
using Dllm.Serving.Scheduling;

namespace Dllm.Tests.Serving;

/// <summary>
/// Two tiny checkpoints written once for all serving tests: a diffusion one (LLaDA2 MoE with a MASK
/// token) and an AR one (Qwen2), both with the byte-level tokenizer and its ChatML template.
/// </summary>
public sealed class ServingFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public ServingFixture()
    {
        TorchRuntime.EnsureLoaded();
        TinyCheckpoints.Write("llada2", _dir.File("raw-llada2"));
        using (var raw = LoadedModel.Load(_dir.File("raw-llada2")))
        {
            raw.EnsureMaskToken();
            raw.Save(_dir.File("tiny-dllm"));
        }
        TinyCheckpoints.Write("qwen2", _dir.File("tiny-ar"));
    }

    public string Diffusion => _dir.File("tiny-dllm");
    public string Ar => _dir.File("tiny-ar");

    public string Folder(DecodeMode mode) => mode == DecodeMode.Diffusion ? Diffusion : Ar;

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition(Name)]
public sealed class ServingCollection : ICollectionFixture<ServingFixture>
{
    public const string Name = "serving";
}

/// <summary>A model and a server on a free loopback port, torn down in the right order (server, then model).</summary>
public sealed class TestServer : IAsyncDisposable
{
    private TestServer(LoadedModel model, DllmServer server)
    {
        Model = model;
        Server = server;
        Http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public LoadedModel Model { get; }
    public DllmServer Server { get; }
    public HttpClient Http { get; }
    public GenerationScheduler Scheduler => Server.Scheduler;
    public Uri OpenAiEndpoint => new(Server.BaseAddress, "v1");

    public static async Task<TestServer> StartAsync(string folder, ServerOptions? options = null, Func<BatchDecoder, BatchDecoder>? wrap = null)
    {
        var model = LoadedModel.Load(folder);
        try
        {
            var decoder = wrap?.Invoke(BatchDecoders.For(model));
            var server = await DllmServer.StartAsync(model, (options ?? new ServerOptions()) with { Host = "127.0.0.1", Port = 0 }, decoder: decoder);
            return new TestServer(model, server);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Model.Dispose();
    }
}

/// <summary>Decoder wrappers that make timing deterministic: hold batches at a gate, or slow every step.</summary>
public static class TestDecoders
{
    /// <summary>Each batch waits for <paramref name="gate"/> before its first forward.</summary>
    public static Func<BatchDecoder, BatchDecoder> Held(ManualResetEventSlim gate) =>
        inner => key => new HookedSession(inner(key), before: (step, cancel) => { if (step == 0) gate.Wait(cancel); });

    /// <summary>Sleeps <paramref name="perStep"/> after every decoding forward.</summary>
    public static Func<BatchDecoder, BatchDecoder> Slow(TimeSpan perStep) =>
        inner => key => new HookedSession(inner(key), after: s => { if (s.Rows > 0) Thread.Sleep(perStep); });
}

/// <summary>A session with test hooks around its steps and adds.</summary>
public sealed class HookedSession(IGenerationSession inner, Action<int, CancellationToken>? before = null, Action<GenerationStep>? after = null,
    Action<GenerationRequest>? added = null) : IGenerationSession
{
    private int _steps;

    public int Running => inner.Running;
    public int Count => inner.Count;
    public int Forwards => inner.Forwards;
    public long KvCacheBytes => inner.KvCacheBytes;

    public int Add(GenerationRequest request)
    {
        added?.Invoke(request);
        return inner.Add(request);
    }

    public GenerationStep? Step(CancellationToken cancel = default)
    {
        before?.Invoke(_steps++, cancel);
        var step = inner.Step(cancel);
        if (step is not null) after?.Invoke(step);
        return step;
    }

    public void Dispose() => inner.Dispose();
}
