using Dllm.Serving.Scheduling;
using Microsoft.Extensions.Hosting;

namespace Dllm.Serving.Http;

/// <summary>
/// Ties the scheduler to the host: on stop it takes no new requests and lets the queued and running ones
/// finish; when the host's shutdown timeout fires first, it cancels what is left. The drain runs in the
/// host's "stopping" phase, before Kestrel closes its listener: requests that arrive meanwhile get a 503
/// (shutting_down) they can retry elsewhere, not a refused connection.
/// </summary>
internal sealed class SchedulerLifetime(GenerationScheduler scheduler) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => scheduler.DrainAsync(cancellationToken);

    // Already drained in StoppingAsync; a second call returns at once.
    public Task StopAsync(CancellationToken cancellationToken) => scheduler.DrainAsync(cancellationToken);
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>A lifetime that leaves the process's signals alone: the embedding application decides when to stop.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
