using Dllm.Serving.Scheduling;
using Microsoft.Extensions.Hosting;

namespace Dllm.Serving.Http;

/// <summary>
/// Ties the scheduler to the host: on stop it takes no new requests and lets the queued and running ones
/// finish; when the host's shutdown timeout fires first, it cancels what is left.
/// </summary>
internal sealed class SchedulerLifetime(GenerationScheduler scheduler) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => scheduler.DrainAsync(cancellationToken);
}

/// <summary>A lifetime that leaves the process's signals alone: the embedding application decides when to stop.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
