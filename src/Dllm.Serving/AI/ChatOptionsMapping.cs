using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using DllmChatMessage = Dllm.Chat.ChatMessage;

namespace Dllm.Serving.AI;

/// <summary>
/// Microsoft.Extensions.AI's messages and options as dllm's: text messages with system/user/assistant roles,
/// ChatOptions' sampling settings, and block_size / threshold / max_steps_per_block / editing_threshold / max_post_steps / top_k from
/// AdditionalProperties (the names the HTTP API uses). Unsupported features fail loudly.
/// </summary>
internal static class ChatOptionsMapping
{
    public static IReadOnlyList<DllmChatMessage> Messages(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var list = new List<DllmChatMessage>();
        if (!string.IsNullOrEmpty(options?.Instructions)) list.Add(DllmChatMessage.System(options.Instructions));
        var i = 0;
        foreach (var m in messages)
        {
            if (m.Contents.Any(c => c is not TextContent))
                throw new RequestError($"messages[{i}] holds {m.Contents.First(c => c is not TextContent).GetType().Name}: only text content is supported", $"messages[{i}].content");
            list.Add(new DllmChatMessage(m.Role.Value, m.Text));
            i++;
        }
        return list;
    }

    public static CompletionSettings Settings(ChatOptions? options)
    {
        if (options is null) return new CompletionSettings();
        if (options.Tools is { Count: > 0 }) throw new RequestError("tools are not supported: this model generates text only", "tools");
        if (options.ResponseFormat is not null and not ChatResponseFormatText)
            throw new RequestError("only text responses are supported", "response_format");
        var extra = options.AdditionalProperties;
        return new CompletionSettings
        {
            MaxTokens = options.MaxOutputTokens,
            Temperature = options.Temperature,
            TopP = options.TopP,
            TopK = options.TopK ?? Int(extra, "top_k"),
            Seed = options.Seed,
            Stop = options.StopSequences?.ToList() ?? [],
            BlockSize = Int(extra, "block_size"),
            Threshold = Number(extra, "threshold"),
            MaxStepsPerBlock = Int(extra, "max_steps_per_block"),
            EditingThreshold = Number(extra, "editing_threshold"),
            MaxPostSteps = Int(extra, "max_post_steps"),
        };
    }

    private static int? Int(AdditionalPropertiesDictionary? extra, string key)
    {
        var value = Number(extra, key);
        if (value is null) return null;
        if (Math.Floor(value.Value) != value.Value) throw new RequestError($"{key} must be an integer, got {value}", key);
        return (int)Math.Clamp(value.Value, int.MinValue, int.MaxValue);
    }

    // AdditionalProperties values arrive as CLR numbers, strings or JsonElements depending on who set them.
    private static double? Number(AdditionalPropertiesDictionary? extra, string key)
    {
        if (extra is null || !extra.TryGetValue(key, out var value) || value is null) return null;
        return value switch
        {
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
            JsonElement { ValueKind: JsonValueKind.String } e when double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            IConvertible c and not string and not bool => c.ToDouble(CultureInfo.InvariantCulture),
            _ => throw new RequestError($"{key} must be a number, got {value}", key),
        };
    }
}
