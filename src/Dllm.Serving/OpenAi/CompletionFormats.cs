using System.Text.Json.Nodes;
using Dllm.Generation;

namespace Dllm.Serving.OpenAi;

/// <summary>
/// The JSON shapes of one completion in OpenAI's wire format, full or as stream chunks. One instance
/// per response: it carries the id, creation time and model every object repeats.
/// </summary>
internal abstract class CompletionFormat(string id, string model, bool includeUsage)
{
    protected string Id { get; } = id;
    protected string Model { get; } = model;
    protected long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    public bool IncludeUsage { get; } = includeUsage;

    public abstract JsonObject Full(GenerationResult result);
    /// <summary>Chunks sent before any text (chat: the assistant role).</summary>
    public abstract IEnumerable<JsonObject> Opening();
    public abstract JsonObject Delta(string text);
    public abstract JsonObject Finish(FinishReason finish);

    /// <summary>The extra last chunk of stream_options.include_usage: no choices, only usage.</summary>
    public JsonObject UsageChunk(GenerationResult result)
    {
        var chunk = Envelope(ChunkObject, []);
        chunk["usage"] = Usage(result);
        return chunk;
    }

    protected abstract string ChunkObject { get; }

    protected JsonObject Envelope(string type, JsonArray choices) => new()
    {
        ["id"] = Id,
        ["object"] = type,
        ["created"] = Created,
        ["model"] = Model,
        ["choices"] = choices,
    };

    protected JsonObject Chunk(JsonObject choice)
    {
        var chunk = Envelope(ChunkObject, [choice]);
        if (IncludeUsage) chunk["usage"] = null;
        return chunk;
    }

    public static string Reason(FinishReason finish) => finish switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        _ => "cancelled",
    };

    /// <summary>OpenAI's three counts plus the decoding figures a dLLM is judged by.</summary>
    public static JsonObject Usage(GenerationResult r) => new()
    {
        ["prompt_tokens"] = r.PromptTokens,
        ["completion_tokens"] = r.TokenIds.Length,
        ["total_tokens"] = r.PromptTokens + r.TokenIds.Length,
        ["forwards"] = r.Forwards,
        ["tokens_per_forward"] = Math.Round(r.TokensPerForward, 4),
    };
}

internal sealed class ChatCompletionFormat(string id, string model, bool includeUsage) : CompletionFormat(id, model, includeUsage)
{
    protected override string ChunkObject => "chat.completion.chunk";

    public override JsonObject Full(GenerationResult result)
    {
        var response = Envelope("chat.completion", [new JsonObject
        {
            ["index"] = 0,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = result.Text, ["refusal"] = null },
            ["logprobs"] = null,
            ["finish_reason"] = Reason(result.Finish),
        }]);
        response["usage"] = Usage(result);
        return response;
    }

    public override IEnumerable<JsonObject> Opening() => [Chunk(Choice(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null))];

    public override JsonObject Delta(string text) => Chunk(Choice(new JsonObject { ["content"] = text }, null));

    public override JsonObject Finish(FinishReason finish) => Chunk(Choice(new JsonObject(), Reason(finish)));

    private static JsonObject Choice(JsonObject delta, string? finish) => new()
    {
        ["index"] = 0,
        ["delta"] = delta,
        ["logprobs"] = null,
        ["finish_reason"] = finish,
    };
}

internal sealed class TextCompletionFormat(string id, string model, bool includeUsage) : CompletionFormat(id, model, includeUsage)
{
    protected override string ChunkObject => "text_completion";

    public override JsonObject Full(GenerationResult result)
    {
        var response = Envelope("text_completion", [Choice(result.Text, Reason(result.Finish))]);
        response["usage"] = Usage(result);
        return response;
    }

    public override IEnumerable<JsonObject> Opening() => [];

    public override JsonObject Delta(string text) => Chunk(Choice(text, null));

    public override JsonObject Finish(FinishReason finish) => Chunk(Choice("", Reason(finish)));

    private static JsonObject Choice(string text, string? finish) => new()
    {
        ["text"] = text,
        ["index"] = 0,
        ["logprobs"] = null,
        ["finish_reason"] = finish,
    };
}
