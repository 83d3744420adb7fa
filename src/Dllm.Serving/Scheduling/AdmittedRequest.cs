using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Serving.Scheduling;

/// <summary>
/// Which requests may share one decoding call: the decoder takes the mode and block settings from a
/// batch's first request, so only requests that agree on them batch together.
/// </summary>
public readonly record struct BatchKey(DecodeMode Mode, BlockDecodeOptions? Block);

/// <summary>
/// A request checked against the model before it may queue: settings valid, prompt inside the context,
/// token limit capped at what the context leaves, mode and block settings resolved. Checking here, on the
/// caller's thread, means one bad request never fails a batch it would have shared.
/// </summary>
/// <param name="LongestBatchmatePrompt">
/// The longest prompt this request can share a batch with and still get its full token limit: batches
/// size their context room by their longest prompt (left padding), so an explicit limit tolerates only
/// prompts that leave room for it. A request that asked for "as many as fit" tolerates any prompt, and
/// then ends where its batch's room ends.
/// </param>
public sealed record AdmittedRequest(GenerationRequest Request, int PromptTokens, BatchKey Key, int LongestBatchmatePrompt)
{
    public int MaxNewTokens => Request.Options.MaxNewTokens;

    public static AdmittedRequest Admit(LoadedModel model, GenerationRequest request)
    {
        request.Options.Validate();
        var mode = TextGeneration.ResolveMode(model, request.Mode);
        var context = model.Model.Config.MaxPositionEmbeddings;
        BlockDecodeOptions? block = null;
        var usable = context;
        if (mode == DecodeMode.Diffusion)
        {
            block = TextGeneration.ResolveBlock(model, request.Block);
            block.Validate();
            if (block.BlockSize > context)
                throw new RequestError($"block_size {block.BlockSize} is larger than the model's context ({context})", "block_size");
            usable = context / block.BlockSize * block.BlockSize;   // the last block must end inside the context
        }
        var promptTokens = model.Tokenizer.Encode(request.Prompt, request.AddSpecialTokens).Count;
        if (promptTokens == 0) throw new RequestError("the prompt is empty: it needs at least one token");
        var room = usable - promptTokens;
        if (room <= 0)
            throw new RequestError(
                $"the prompt has {promptTokens} tokens but the model's context is {context} tokens" +
                (usable < context ? $" ({usable} usable with block size {block!.BlockSize})" : "") + ": shorten it to leave room for the reply",
                code: "context_length_exceeded");
        var asked = request.Options.MaxNewTokens;
        var limit = Math.Min(asked, room);
        var tolerated = asked >= room ? usable - 1 : usable - limit;
        var resolved = request with { Mode = mode, Block = block, Options = request.Options with { MaxNewTokens = limit } };
        return new AdmittedRequest(resolved, promptTokens, new BatchKey(mode, block), tolerated);
    }
}
