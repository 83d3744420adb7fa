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
    public static Func<BatchDecoder, BatchDecoder> Held(ManualResetEventSlim gate) => inner => (batch, cancel) => Hold(inner, gate, batch, cancel);

    /// <summary>Sleeps <paramref name="perStep"/> per decoding forward (steps that change no text yield no event, so they are made up for).</summary>
    public static Func<BatchDecoder, BatchDecoder> Slow(TimeSpan perStep) => inner => (batch, cancel) => Slowly(inner, perStep, batch, cancel);

    private static IEnumerable<GenerationEvent> Hold(BatchDecoder inner, ManualResetEventSlim gate, IReadOnlyList<GenerationRequest> batch, CancellationToken cancel)
    {
        gate.Wait(cancel);
        foreach (var e in inner(batch, cancel)) yield return e;
    }

    private static IEnumerable<GenerationEvent> Slowly(BatchDecoder inner, TimeSpan perStep, IReadOnlyList<GenerationRequest> batch, CancellationToken cancel)
    {
        var forwards = 0;
        foreach (var e in inner(batch, cancel))
        {
            if (e.Step.Forward > forwards)
            {
                Thread.Sleep(perStep * (e.Step.Forward - forwards));
                forwards = e.Step.Forward;
            }
            yield return e;
        }
    }
}
