namespace Dllm.Generation;

/// <summary>Settings shared by AR and block decoding.</summary>
public sealed record DecodeOptions
{
    public int MaxNewTokens { get; init; } = 128;
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;
    /// <summary>Token ids that end a sequence (EOS and chat end-of-turn tokens).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    /// <summary>Token id used for left padding in batches; never attended to.</summary>
    public int PadTokenId { get; init; }

    public void Validate()
    {
        if (MaxNewTokens <= 0) throw new DllmException($"max new tokens must be positive, got {MaxNewTokens}");
        Sampling.Validate();
    }
}
