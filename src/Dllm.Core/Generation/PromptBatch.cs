using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// Prompts left-padded to a common width: tokens [B, W], key validity [B, W] (false at padding) and
/// RoPE positions [B, W] counted from each prompt's first real token, so a padded prompt computes
/// exactly what it computes alone.
/// </summary>
internal sealed record PromptBatch(Tensor Tokens, Tensor Valid, Tensor Positions, int Width, int MaxNewTokens) : IDisposable
{
    public void Dispose()
    {
        Tokens.Dispose();
        Valid.Dispose();
        Positions.Dispose();
    }

    public static PromptBatch Create(IReadOnlyList<IReadOnlyList<int>> prompts, int padId, int maxNewTokens, int contextLength, Device device)
    {
        if (prompts.Count == 0) throw new DllmException("no prompts to decode");
        var width = prompts.Max(p => p.Count);
        if (prompts.Any(p => p.Count == 0)) throw new DllmException("a prompt is empty: it needs at least one token (e.g. BOS)");
        if (width >= contextLength)
            throw new DllmException($"the prompt has {width} tokens but the model's context is {contextLength}; shorten it to leave room for at least one new token");
        var maxNew = Math.Min(maxNewTokens, contextLength - width);
        var tokens = new long[prompts.Count * width];
        var valid = new bool[prompts.Count * width];
        var positions = new long[prompts.Count * width];
        for (var b = 0; b < prompts.Count; b++)
        {
            var pad = width - prompts[b].Count;
            for (var i = 0; i < width; i++)
            {
                var at = b * width + i;
                tokens[at] = i < pad ? padId : prompts[b][i - pad];
                valid[at] = i >= pad;
                positions[at] = Math.Max(0, i - pad);
            }
        }
        long[] shape = [prompts.Count, width];
        return new PromptBatch(
            tensor(tokens, shape, device: device),
            tensor(valid, shape, device: device),
            tensor(positions, shape, device: device),
            width, maxNew);
    }
}
