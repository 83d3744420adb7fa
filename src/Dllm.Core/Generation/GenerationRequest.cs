namespace Dllm.Generation;

public enum DecodeMode
{
    /// <summary>Diffusion for dLLM checkpoints, AR otherwise.</summary>
    Auto,
    Ar,
    Diffusion,
}

/// <summary>One prompt to complete, with its decoding settings.</summary>
public sealed record GenerationRequest
{
    public required string Prompt { get; init; }
    /// <summary>Apply the tokenizer's BOS/EOS post-processing (off for chat-templated prompts that carry their own).</summary>
    public bool AddSpecialTokens { get; init; } = true;
    /// <summary>
    /// The prompt's token ids when the caller has already tokenised it (the server does, to check the context before
    /// queueing): decoding uses them instead of encoding <see cref="Prompt"/> again. They must be its encoding.
    /// </summary>
    public IReadOnlyList<int>? PromptTokenIds { get; init; }
    /// <summary>The prompt's token ids: <see cref="PromptTokenIds"/>, else its encoding by <paramref name="tokenizer"/>.</summary>
    public IReadOnlyList<int> Tokens(Tokenization.TextTokenizer tokenizer) => PromptTokenIds ?? tokenizer.Encode(Prompt, AddSpecialTokens);
    public DecodeOptions Options { get; init; } = new();
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    public DecodeMode Mode { get; init; } = DecodeMode.Auto;
    /// <summary>Block decoding settings (diffusion mode); null: the checkpoint's block size and the official defaults.</summary>
    public BlockDecodeOptions? Block { get; init; }
    /// <summary>Cancels this request alone: its sequence leaves the batch at the next step, the others go on.</summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>The finished completion of one prompt, with the speed figures every command reports.</summary>
public sealed record GenerationResult(
    string Text,
    int[] TokenIds,
    FinishReason Finish,
    int PromptTokens,
    int Forwards,
    double Seconds,
    DecodeMode Mode,
    int StopTokens = 0)
{
    /// <summary>Tokens the model decoded: the output and the stop token that ended it (the model produced it too).</summary>
    public int DecodedTokens => TokenIds.Length + StopTokens;

    /// <summary>Decoded tokens per decoding forward (the prompt prefill is not one), so AR gives exactly 1.</summary>
    public double TokensPerForward => Forwards == 0 ? 0 : (double)DecodedTokens / Forwards;

    /// <summary>Decoded tokens per second of wall time, prefill included.</summary>
    public double TokensPerSecond => Seconds <= 0 ? 0 : DecodedTokens / Seconds;
}

/// <summary>Streamed output: new text for a sequence after a decoding step, and its result when done.</summary>
public sealed record GenerationEvent(int Sequence, string Delta, DecodeStep Step, GenerationResult? Result = null);
