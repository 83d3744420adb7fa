using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// Opens the running batch for one kind of request (<see cref="BatchKey"/>: mode and block settings); the scheduler
/// adds requests to it between steps and steps it on its decode thread only. The real one is a
/// <see cref="TextGenerationSession"/>; tests wrap it to slow, hold or break a batch.
/// </summary>
public delegate IGenerationSession BatchDecoder(BatchKey key);

public static class BatchDecoders
{
    public static BatchDecoder For(LoadedModel model, PrefixCache? prefixes = null, int prefillChunk = 0) =>
        key => new TextGenerationSession(model, key.Mode, key.Block, prefixes: prefixes, prefillChunk: prefillChunk);
}
