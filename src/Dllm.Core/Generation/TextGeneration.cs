using System.Diagnostics;
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
    /// request; the decode mode, block settings and stop-token ids are the first request's.
    /// </summary>
    public static IEnumerable<GenerationEvent> Stream(LoadedModel model, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default)
    {
        if (requests.Count == 0) yield break;
        var first = requests[0];
        var mode = ResolveMode(model, first.Mode);
        var prompts = requests.Select(r => (IReadOnlyList<int>)model.Tokenizer.Encode(r.Prompt, r.AddSpecialTokens)).ToList();
        var room = ContextRoom(model, mode, first.Block, prompts);
        var perSequence = requests.Select(r => r.Options with
        {
            // The decoders stop at the context too; capping here lets the streamed text end where the result does.
            MaxNewTokens = room > 0 ? Math.Min(r.Options.MaxNewTokens, room) : r.Options.MaxNewTokens,
            StopTokenIds = first.Options.StopTokenIds.Count > 0 ? first.Options.StopTokenIds : model.StopTokenIds,
            PadTokenId = model.PadTokenId,
        }).ToList();
        var options = perSequence[0];
        var stopIds = options.StopTokenIds.ToHashSet();
        var texts = requests.Select((r, i) => new SequenceText(model.Tokenizer, new StopStrings(r.StopStrings), perSequence[i].MaxNewTokens, stopIds)).ToArray();
        bool StopWhen(int seq, IReadOnlyList<int> generated) => requests[seq].Cancellation.IsCancellationRequested || texts[seq].StopsAt(generated);
        var forwards = new int[requests.Count];
        var clock = Stopwatch.StartNew();
        var steps = mode switch
        {
            DecodeMode.Ar => ArDecoder.Run(model.Model, prompts, perSequence, StopWhen, cancel),
            _ => BlockDecoder.Run(model.Model, prompts, perSequence, ResolveBlock(model, first.Block), model.MaskTokenId!.Value, StopWhen, cancel),
        };
        foreach (var step in steps)
        {
            foreach (var u in step.Updates)
            {
                if (u.Positions.Length > 0) forwards[u.Sequence]++;   // finish-only updates come without a forward
                var text = texts[u.Sequence];
                text.Apply(u);
                GenerationResult? result = null;
                if (u.Finished is { } finish)
                {
                    if (requests[u.Sequence].Cancellation.IsCancellationRequested) finish = FinishReason.Cancelled;
                    var (final, tokens) = text.Final(u.FinalLength);
                    result = new GenerationResult(final, tokens, finish, prompts[u.Sequence].Count, forwards[u.Sequence], clock.Elapsed.TotalSeconds, mode,
                        text.StopTokenAt(u.FinalLength, stopIds));
                }
                var delta = text.TakeDelta(final: result is not null);
                if (delta.Length > 0 || result is not null)
                    yield return new GenerationEvent(u.Sequence, delta, step, result);
            }
        }
    }

    /// <summary>
    /// <see cref="Stream"/> as an async stream: decoding runs on its own thread, the caller awaits each event.
    /// Stopping the enumeration early, or cancelling, ends the decoding at its next step.
    /// </summary>
    public static IAsyncEnumerable<GenerationEvent> StreamAsync(LoadedModel model, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default) =>
        AsyncDecodeStream.Run(token => Stream(model, requests, token), cancel);

    /// <summary>New tokens the batch's longest prompt leaves in the context (as the decoders count it; may be &lt;= 0).</summary>
    private static int ContextRoom(LoadedModel model, DecodeMode mode, BlockDecodeOptions? block, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        var context = model.Model.Config.MaxPositionEmbeddings;
        var longest = prompts.Max(p => p.Count);
        if (mode == DecodeMode.Ar) return context - longest;
        var b = ResolveBlock(model, block).BlockSize;
        return b > 0 ? BlockLayout.UsableContext(context, b) - longest : 0;   // a bad block size is the decoder's to report
    }

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
