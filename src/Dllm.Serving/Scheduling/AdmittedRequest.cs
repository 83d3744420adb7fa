using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// Which requests may share a running batch: its decoder has one mode and one set of block settings, so only
/// requests that agree on them batch together.
/// </summary>
public readonly record struct BatchKey(DecodeMode Mode, BlockDecodeOptions? Block);

/// <summary>
/// A request checked against the model before it may queue: settings valid, prompt inside the context,
/// token limit capped at what the context leaves, mode and block settings resolved. Checking here, on the
/// caller's thread, means one bad request never fails a batch it would have shared.
/// </summary>
public sealed record AdmittedRequest(GenerationRequest Request, int PromptTokens, BatchKey Key)
{
    public int MaxNewTokens => Request.Options.MaxNewTokens;

    /// <summary>What the request can hold in the batch at most: its prompt and every token it may generate.</summary>
    public long ReservedTokens => PromptTokens + MaxNewTokens;

    /// <summary>
    /// Checks and resolves <paramref name="request"/>; with <paramref name="maxBatchTokens"/> (see
    /// <see cref="SchedulerOptions.MaxBatchTokens"/>), its token limit is clamped so that it fits the batch alone.
    /// </summary>
    public static AdmittedRequest Admit(LoadedModel model, GenerationRequest request, long maxBatchTokens = 0)
    {
        request.Options.Validate();
        var mode = TextGeneration.ResolveMode(model, request.Mode);
        var context = model.Model.Config.MaxPositionEmbeddings;
        BlockDecodeOptions? block = null;
        var usable = context;
        if (mode == DecodeMode.Diffusion)
        {
            block = TextGeneration.ResolveBlock(model, request.Block);
            block.ValidateFor(model.Labels);
            if (block.BlockSize > context)
                throw new RequestError($"block_size {block.BlockSize} is larger than the model's context ({context})", "block_size");
            usable = context / block.BlockSize * block.BlockSize;   // the last block must end inside the context
        }
        var ids = request.Tokens(model.Tokenizer);   // encoded once: the decoder reuses these ids
        var promptTokens = ids.Count;
        if (promptTokens == 0) throw new RequestError("the prompt is empty: it needs at least one token");
        var room = usable - promptTokens;
        if (room <= 0)
            throw new RequestError(
                $"the prompt has {promptTokens} tokens but the model's context is {context} tokens" +
                (usable < context ? $" ({usable} usable with block size {block!.BlockSize})" : "") + ": shorten it to leave room for the reply",
                code: "context_length_exceeded");
        if (maxBatchTokens > 0 && promptTokens >= maxBatchTokens)
            throw new RequestError(
                $"the prompt has {promptTokens} tokens but this server holds at most {maxBatchTokens} tokens per batch (--max-batch-tokens), " +
                "the reply included: shorten it", code: "context_length_exceeded");
        var asked = request.Options.MaxNewTokens;
        var limit = Math.Min(asked, room);
        if (maxBatchTokens > 0) limit = (int)Math.Min(limit, maxBatchTokens - promptTokens);
        var resolved = request with { Mode = mode, Block = block, Options = request.Options with { MaxNewTokens = limit }, PromptTokenIds = ids };
        return new AdmittedRequest(resolved, promptTokens, new BatchKey(mode, block));
    }
}
