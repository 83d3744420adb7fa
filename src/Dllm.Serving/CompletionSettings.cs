using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Serving;

/// <summary>
/// The decoding knobs a client may set, whichever API it came through (OpenAI JSON or ChatOptions),
/// checked here once with OpenAI's parameter names. Null means "the default": greedy, as many tokens
/// as the context leaves, the checkpoint's block size and the official threshold and step limit.
/// </summary>
public sealed record CompletionSettings
{
    public const int MaxStopStrings = 16;

    public int? MaxTokens { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public int? TopK { get; init; }
    public long? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public int? BlockSize { get; init; }
    public double? Threshold { get; init; }
    public int? MaxStepsPerBlock { get; init; }
    /// <summary>LLaDA2.1 token editing: set to turn it on (see <see cref="EditingOptions"/>).</summary>
    public double? EditingThreshold { get; init; }
    public int? MaxPostSteps { get; init; }

    /// <summary>
    /// The request to decode <paramref name="prompt"/> with these settings. The token limit is left for
    /// admission to cap at the context; diffusion settings are ignored by AR checkpoints.
    /// </summary>
    public GenerationRequest ToRequest(LoadedModel model, string prompt, bool addSpecialTokens, IReadOnlyList<string> templateStops, CancellationToken cancel)
    {
        Validate();
        var defaults = TextGeneration.ResolveBlock(model, null);
        return new GenerationRequest
        {
            Prompt = prompt,
            AddSpecialTokens = addSpecialTokens,
            StopStrings = templateStops.Concat(Stop).Distinct().ToList(),
            Block = new BlockDecodeOptions(BlockSize ?? defaults.BlockSize, Threshold ?? defaults.Threshold, MaxStepsPerBlock ?? defaults.MaxStepsPerBlock,
                Editing: EditingThreshold is { } e ? new EditingOptions(e, MaxPostSteps ?? new EditingOptions().MaxPostSteps) : null),
            Options = new DecodeOptions
            {
                MaxNewTokens = MaxTokens ?? int.MaxValue,
                Sampling = new SamplingOptions(Temperature ?? 0, TopK ?? 0, TopP ?? 1, Seed ?? 0),
            },
            Cancellation = cancel,
        };
    }

    public void Validate()
    {
        if (MaxTokens is < 1) throw new RequestError($"max_tokens must be at least 1, got {MaxTokens}", "max_tokens");
        if (Temperature is { } t && !(t >= 0 && t <= 2)) throw new RequestError($"temperature must be between 0 and 2, got {t}", "temperature");
        if (TopP is { } p && !(p > 0 && p <= 1)) throw new RequestError($"top_p must be in (0, 1], got {p}", "top_p");
        if (TopK is < 0) throw new RequestError($"top_k must be 0 (off) or positive, got {TopK}", "top_k");
        if (Stop.Count > MaxStopStrings) throw new RequestError($"stop takes at most {MaxStopStrings} strings, got {Stop.Count}", "stop");
        if (Stop.Any(string.IsNullOrEmpty)) throw new RequestError("stop strings must not be empty", "stop");
        if (BlockSize is < 1) throw new RequestError($"block_size must be at least 1, got {BlockSize}", "block_size");
        if (Threshold is { } th && !(th >= 0 && th <= 1)) throw new RequestError($"threshold must be between 0 and 1, got {th}", "threshold");
        if (MaxStepsPerBlock is < 1) throw new RequestError($"max_steps_per_block must be at least 1, got {MaxStepsPerBlock}", "max_steps_per_block");
        if (EditingThreshold is { } e && !(e >= 0 && e <= 1)) throw new RequestError($"editing_threshold must be between 0 and 1, got {e}", "editing_threshold");
        if (MaxPostSteps is < 0) throw new RequestError($"max_post_steps must be 0 or more, got {MaxPostSteps}", "max_post_steps");
        if (MaxPostSteps is not null && EditingThreshold is null)
            throw new RequestError("max_post_steps needs editing_threshold (it bounds the refinement that token editing adds)", "max_post_steps");
    }
}
