using System.Text;
using System.Text.Json;
using Dllm.Chat;

namespace Dllm.Serving.OpenAi;

/// <summary>POST /v1/chat/completions, as far as dllm understands it.</summary>
internal sealed record ChatCompletionBody(string? Model, IReadOnlyList<ChatMessage> Messages, CompletionSettings Settings, bool Stream, bool IncludeUsage)
{
    public static ChatCompletionBody Read(JsonRequest json)
    {
        if (json.Bool("logprobs") == true) throw new RequestError("logprobs are not supported", "logprobs");
        if (json.Field("tools") is { ValueKind: JsonValueKind.Array } tools && tools.GetArrayLength() > 0)
            throw new RequestError("tools are not supported: this server generates text only", "tools");
        if (json.Field("response_format") is { } format && (format.ValueKind != JsonValueKind.Object
            || !format.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "text"))
            throw new RequestError("response_format: only {\"type\": \"text\"} is supported", "response_format");
        var settings = OpenAiSettings.Read(json, json.Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
        var (stream, includeUsage) = OpenAiSettings.Streaming(json);
        return new ChatCompletionBody(json.String("model"), ReadMessages(json), settings, stream, includeUsage);
    }

    private static List<ChatMessage> ReadMessages(JsonRequest json)
    {
        if (json.Field("messages") is not { } messages) throw new RequestError("messages is required", "messages");
        if (messages.ValueKind != JsonValueKind.Array) throw JsonRequest.TypeError("messages", "an array", messages);
        var list = new List<ChatMessage>();
        var i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            var at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw JsonRequest.TypeError(at, "an object", m);
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw new RequestError($"{at}.role is required and must be a string", $"{at}.role");
            list.Add(new ChatMessage(role.GetString()!, Content(m, at)));
        }
        if (list.Count == 0) throw new RequestError("messages must hold at least one message", "messages");
        return list;
    }

    // Content is a string, or an array of {"type": "text", "text": ...} parts (what SDKs send for multi-part messages).
    private static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw JsonRequest.TypeError($"{at}.content", "a string or an array of text parts", content);
        var text = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.GetString() != "text"
                || !part.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw new RequestError($"{at}.content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported", $"{at}.content");
            text.Append(t.GetString());
        }
        return text.ToString();
    }
}

/// <summary>POST /v1/completions (legacy): one string prompt, continued as is.</summary>
internal sealed record CompletionBody(string? Model, string Prompt, CompletionSettings Settings, bool Stream, bool IncludeUsage)
{
    /// <summary>OpenAI's default for the legacy endpoint.</summary>
    public const int DefaultMaxTokens = 16;

    public static CompletionBody Read(JsonRequest json)
    {
        if (json.Bool("echo") == true) throw new RequestError("echo is not supported", "echo");
        if (json.Has("suffix")) throw new RequestError("suffix is not supported", "suffix");
        if (json.Has("logprobs")) throw new RequestError("logprobs are not supported", "logprobs");
        if (json.Int("best_of") is > 1) throw new RequestError("best_of must be 1", "best_of");
        var settings = OpenAiSettings.Read(json, "max_tokens");
        settings = settings with { MaxTokens = json.Has("max_tokens") ? settings.MaxTokens : DefaultMaxTokens };
        var (stream, includeUsage) = OpenAiSettings.Streaming(json);
        return new CompletionBody(json.String("model"), ReadPrompt(json), settings, stream, includeUsage);
    }

    private static string ReadPrompt(JsonRequest json)
    {
        switch (json.Field("prompt"))
        {
            case null: throw new RequestError("prompt is required", "prompt");
            case { ValueKind: JsonValueKind.String } s: return s.GetString()!;
            case { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() == 1 && a[0].ValueKind == JsonValueKind.String: return a[0].GetString()!;
            case { ValueKind: JsonValueKind.Array }:
                throw new RequestError("prompt must be one string (batches of prompts and token-id prompts are not supported: send concurrent requests)", "prompt");
            case { } v: throw JsonRequest.TypeError("prompt", "a string", v);
        }
    }
}

/// <summary>The fields both endpoints share: sampling, limits, stops, and the diffusion extras.</summary>
internal static class OpenAiSettings
{
    public static CompletionSettings Read(JsonRequest json, string maxTokensField)
    {
        if (json.Int("n") is { } n && n != 1) throw new RequestError($"n must be 1 (one choice per request), got {n}", "n");
        var maxTokens = json.Int(maxTokensField);
        if (maxTokens is < 1) throw new RequestError($"{maxTokensField} must be at least 1, got {maxTokens}", maxTokensField);
        return new CompletionSettings
        {
            MaxTokens = maxTokens,
            Temperature = json.Number("temperature"),
            TopP = json.Number("top_p"),
            TopK = json.Int("top_k"),
            Seed = json.Long("seed"),
            Stop = json.Strings("stop"),
            BlockSize = json.Int("block_size"),
            Threshold = json.Number("threshold"),
            MaxStepsPerBlock = json.Int("max_steps_per_block"),
            EditingThreshold = json.Number("editing_threshold"),
            MaxPostSteps = json.Int("max_post_steps"),
        };
    }

    public static (bool Stream, bool IncludeUsage) Streaming(JsonRequest json)
    {
        var includeUsage = false;
        if (json.Field("stream_options") is { } options)
        {
            if (options.ValueKind != JsonValueKind.Object) throw JsonRequest.TypeError("stream_options", "an object", options);
            if (options.TryGetProperty("include_usage", out var u) && u.ValueKind is JsonValueKind.True or JsonValueKind.False) includeUsage = u.GetBoolean();
        }
        return (json.Bool("stream") ?? false, includeUsage);
    }
}
