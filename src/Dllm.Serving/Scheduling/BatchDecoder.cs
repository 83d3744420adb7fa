using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// Decodes one batch and streams its events; the scheduler calls it on its decode thread only.
/// The real one is <see cref="TextGeneration.Stream"/>; tests wrap it to slow or hold a batch.
/// </summary>
public delegate IEnumerable<GenerationEvent> BatchDecoder(IReadOnlyList<GenerationRequest> batch, CancellationToken cancel);

public static class BatchDecoders
{
    public static BatchDecoder For(LoadedModel model) => (batch, cancel) => TextGeneration.Stream(model, batch, cancel);
}
