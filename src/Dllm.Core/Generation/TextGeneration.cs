using Dllm.Models;

namespace Dllm.Generation;

/// <summary>
/// Text in, text out: tokenises prompts, runs the decoder the checkpoint calls for, and turns its
/// steps into streamed text and final results. The CLI, the chat view and the server all call this.
/// </summary>
public static class TextGeneration
{
    public static DecodeMode ResolveMode(LoadedModel model, DecodeMode requested) => requested switch
    {
        DecodeMode.Auto => model.IsDiffusion ? DecodeMode.Diffusion : DecodeMode.Ar,
        DecodeMode.Diffusion when model.MaskTokenId is null =>
            throw new DllmException("diffusion decoding needs a MASK token, and this checkpoint has none: convert it first (dllm convert), or use --mode ar"),
        _ => requested,
    };

    /// <summary>The request's block settings, with the block size defaulting to the checkpoint's.</summary>
    public static BlockDecodeOptions ResolveBlock(LoadedModel model, BlockDecodeOptions? requested) =>
        requested ?? new BlockDecodeOptions(BlockSize: model.DefaultBlockSize);

    /// <summary>
    /// Decodes all requests together and streams events. Token limits, sampling and stop strings are per
    /// request; the decode mode, block settings and stop-token ids are the first request's. <paramref name="prefixes"/>
    /// lets prompts reuse the prefill of a prefix an earlier call saw (a chat's history).
    /// </summary>
    public static IEnumerable<GenerationEvent> Stream(LoadedModel model, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default,
        PrefixCache? prefixes = null)
    {
        if (requests.Count == 0) yield break;
        var first = requests[0];
        using var session = new TextGenerationSession(model, ResolveMode(model, first.Mode), first.Block,
            first.Options.StopTokenIds.Count > 0 ? first.Options.StopTokenIds : null, prefixes);
        foreach (var r in requests) session.Add(r);
        while (session.Step(cancel) is { } step)
            foreach (var e in step.Events) yield return e;
    }

    /// <summary>
    /// <see cref="Stream"/> as an async stream: decoding runs on its own thread, the caller awaits each event.
    /// Stopping the enumeration early, or cancelling, ends the decoding at its next step.
    /// </summary>
    public static IAsyncEnumerable<GenerationEvent> StreamAsync(LoadedModel model, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default) =>
        AsyncDecodeStream.Run(token => Stream(model, requests, token), cancel);

    /// <summary>Runs to completion and returns one result per request.</summary>
    public static IReadOnlyList<GenerationResult> Generate(LoadedModel model, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default)
    {
        var results = new GenerationResult?[requests.Count];
        foreach (var e in Stream(model, requests, cancel))
            if (e.Result is not null) results[e.Sequence] = e.Result;
        return results.Select(r => r ?? throw new InvalidOperationException("a sequence ended without a result")).ToList();
    }

    public static GenerationResult Generate(LoadedModel model, GenerationRequest request, CancellationToken cancel = default) =>
        Generate(model, [request], cancel)[0];
}
