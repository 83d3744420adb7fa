using Dllm.Models;
using Dllm.Serving.AI;
using Dllm.Serving.Scheduling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dllm.Serving.Http;

/// <summary>
/// The OpenAI-compatible HTTP server (Kestrel, minimal APIs) over one loaded model and its scheduler.
/// Stopping drains: no new connections, in-flight requests finish within the drain timeout.
/// The caller keeps ownership of the model and disposes it after the server.
/// </summary>
public sealed class DllmServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DllmServer(WebApplication app, ServedModel served, GenerationScheduler scheduler, Uri baseAddress, IReadOnlyList<string> listening)
    {
        _app = app;
        Served = served;
        Scheduler = scheduler;
        BaseAddress = baseAddress;
        Listening = listening;
    }

    public ServedModel Served { get; }
    public GenerationScheduler Scheduler { get; }
    /// <summary>The bound address, e.g. http://127.0.0.1:43817/ (the OpenAI base URL is this plus "v1").</summary>
    public Uri BaseAddress { get; }
    /// <summary>What the sockets are really bound to, e.g. http://0.0.0.0:8000 (every interface) or http://127.0.0.1:8000.</summary>
    public IReadOnlyList<string> Listening { get; }

    /// <param name="logging">Configures logging (none by default: the CLI adds a console logger).</param>
    /// <param name="decoder">Replaces the model's decoder (tests slow it down or hold batches).</param>
    public static async Task<DllmServer> StartAsync(LoadedModel model, ServerOptions options, Action<ILoggingBuilder>? logging = null,
        BatchDecoder? decoder = null, CancellationToken cancel = default)
    {
        options.Validate();
        var served = new ServedModel(model, options.ModelId, options.Template);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        var address = options.ListenAddress();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            // Explicit endpoints: UseUrls treats a host name it cannot parse as "every interface".
            if (address is null) k.ListenLocalhost(options.Port);
            else k.Listen(address, options.Port);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.DrainTimeout);
        if (!options.HandleSignals) builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.Services.AddSingleton(services => new GenerationScheduler(model, options.SchedulerOptions(),
            services.GetRequiredService<ILoggerFactory>().CreateLogger("Dllm.Serving.Scheduler"), decoder));
        builder.Services.AddHostedService<SchedulerLifetime>();

        var app = builder.Build();
        app.UseStatusCodePages(context => OpenAiErrorMiddleware.WriteStatusAsync(context.HttpContext));
        app.UseMiddleware<OpenAiErrorMiddleware>();
        var scheduler = app.Services.GetRequiredService<GenerationScheduler>();
        new OpenAiEndpoints(served, scheduler).Map(app);
        try
        {
            await app.StartAsync(cancel);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // Kestrel's bind failures (address in use, "localhost" with port 0): the user's options, not a bug.
            await app.DisposeAsync();
            throw new DllmException($"cannot listen on {options.Url}: {e.Message}", e);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        var bound = app.Urls.ToList();
        var baseAddress = new Uri(bound.First().Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "[::1]", StringComparison.Ordinal) + "/");
        return new DllmServer(app, served, scheduler, baseAddress, bound);
    }

    /// <summary>An in-process chat client sharing this server's scheduler, so its requests batch with HTTP ones.</summary>
    public DllmChatClient CreateChatClient() => new(Scheduler, Served);

    /// <summary>Completes when the host is asked to stop (Ctrl-C with <see cref="ServerOptions.HandleSignals"/>) and has drained.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancel = default) => _app.WaitForShutdownAsync(cancel);

    /// <summary>Stops gracefully: stop accepting, drain within the drain timeout (or until <paramref name="cancel"/>).</summary>
    public Task StopAsync(CancellationToken cancel = default) => _app.StopAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
