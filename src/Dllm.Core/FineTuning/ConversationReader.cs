using System.Text.Json;
using System.Text.Json.Nodes;
using Dllm.Chat;

namespace Dllm.FineTuning;

/// <summary>A fine-tuning example before tokenization: the conversation so far and the reply to learn.</summary>
public sealed record SftRecord(IReadOnlyList<ChatMessage> Context, string Response, bool RawPrompt);

/// <summary>A preference pair: one context, a preferred and a dispreferred reply.</summary>
public sealed record PreferenceRecord(IReadOnlyList<ChatMessage> Context, string Chosen, string Rejected, bool RawPrompt);

/// <summary>
/// Reads the fine-tuning formats: chat JSONL with "messages" (role/content; the last assistant turn is
/// the response), JSONL with prompt/answer (the prompt used verbatim), GSM8K's question/answer; and
/// preference data with prompt/chosen/rejected (strings or message lists), ShareGPT ranking records
/// (conversations + chosen/rejected objects, JSON array or JSONL) and chosen_messages/rejected_messages.
/// Errors name the file and the line.
/// </summary>
public static class ConversationReader
{
    public static IReadOnlyList<SftRecord> ReadSft(string path) =>
        Records(path).Select(r => Sft(r.Node, r.Where)).ToList() is { Count: > 0 } list ? list : throw new DllmException($"{path} holds no examples");

    public static IReadOnlyList<PreferenceRecord> ReadPreferences(string path) =>
        Records(path).Select(r => Preference(r.Node, r.Where)).ToList() is { Count: > 0 } list ? list : throw new DllmException($"{path} holds no preference pairs");

    private static IEnumerable<(JsonObject Node, string Where)> Records(string path)
    {
        if (!File.Exists(path)) throw new DllmException($"data file not found: {path}");
        var text = File.ReadAllText(path);
        if (text.TrimStart().StartsWith('['))
        {
            JsonArray array;
            try { array = IO.StrictJson.Parse(text)!.AsArray(); }
            catch (JsonException e) { throw new DllmException($"{path}: not valid JSON ({e.Message})"); }
            for (var i = 0; i < array.Count; i++)
                yield return (array[i] as JsonObject ?? throw new DllmException($"{path} record {i + 1}: not a JSON object"), $"{path} record {i + 1}");
            yield break;
        }
        var line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            JsonObject o;
            try { o = IO.StrictJson.Parse(raw) as JsonObject ?? throw new DllmException($"{path} line {line}: not a JSON object"); }
            catch (JsonException e) { throw new DllmException($"{path} line {line}: not valid JSON ({e.Message})"); }
            yield return (o, $"{path} line {line}");
        }
    }

    private static SftRecord Sft(JsonObject o, string where)
    {
        if (o["messages"] is JsonArray messages)
        {
            var list = Messages(messages, where);
            if (list.Count < 2 || list[^1].Role != "assistant")
                throw new DllmException($"{where}: 'messages' must end with an assistant reply after at least one other message");
            return new SftRecord(list.Take(list.Count - 1).ToList(), list[^1].Content, RawPrompt: false);
        }
        if (Text(o, "prompt") is { } prompt && Text(o, "answer") is { } answer)
            return new SftRecord([ChatMessage.User(prompt)], answer, RawPrompt: true);
        if (Text(o, "question") is { } question && Text(o, "answer") is { } solution)
            return new SftRecord([ChatMessage.User($"Question: {question}\nAnswer:")], " " + solution, RawPrompt: true);
        throw new DllmException($"{where}: expected 'messages', prompt/answer or question/answer");
    }

    private static PreferenceRecord Preference(JsonObject o, string where)
    {
        if (o["chosen_messages"] is JsonArray cm && o["rejected_messages"] is JsonArray rm)
        {
            var chosen = Messages(cm, where);
            var rejected = Messages(rm, where);
            if (chosen.Count < 2 || chosen[^1].Role != "assistant" || rejected.Count < 2 || rejected[^1].Role != "assistant")
                throw new DllmException($"{where}: chosen_messages and rejected_messages must each end with an assistant reply");
            return new PreferenceRecord(chosen.Take(chosen.Count - 1).ToList(), chosen[^1].Content, rejected[^1].Content, RawPrompt: false);
        }
        if (o["conversations"] is JsonArray conversation)
            return new PreferenceRecord(Messages(conversation, where), Reply(o["chosen"], where, "chosen"), Reply(o["rejected"], where, "rejected"), RawPrompt: false);
        if (o["prompt"] is { } p && o["chosen"] is { } c && o["rejected"] is { } r)
        {
            if (p is JsonArray promptMessages)
                return new PreferenceRecord(Messages(promptMessages, where), Reply(c, where, "chosen"), Reply(r, where, "rejected"), RawPrompt: false);
            return new PreferenceRecord([ChatMessage.User(Scalar(p, where, "prompt"))], Reply(c, where, "chosen"), Reply(r, where, "rejected"), RawPrompt: true);
        }
        throw new DllmException($"{where}: expected prompt/chosen/rejected, conversations/chosen/rejected or chosen_messages/rejected_messages");
    }

    /// <summary>A reply given as a string, a {from|role, value|content} object, or a message list ending in the reply.</summary>
    private static string Reply(JsonNode? node, string where, string field) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject m => Message(m, where).Content,
        JsonArray list when Messages(list, where) is { Count: > 0 } msgs => msgs[^1].Content,
        _ => throw new DllmException($"{where}: '{field}' must be a string, a message or a message list"),
    };

    private static List<ChatMessage> Messages(JsonArray array, string where) =>
        array.Select(n => Message(n as JsonObject ?? throw new DllmException($"{where}: each message must be an object"), where)).ToList();

    private static ChatMessage Message(JsonObject m, string where)
    {
        var role = (Text(m, "role") ?? Text(m, "from"))?.ToLowerInvariant() switch
        {
            "user" or "human" => "user",
            "assistant" or "gpt" or "bot" => "assistant",
            "system" => "system",
            null => throw new DllmException($"{where}: a message has no role"),
            var other => throw new DllmException($"{where}: unknown role '{other}' (use system, user or assistant)"),
        };
        var content = m["content"] ?? m["value"];
        return new ChatMessage(role, content switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            // LLaMA-Factory v1: content is a list of {"type": "text", "value": ...} parts.
            JsonArray parts => string.Concat(parts.Select(part => part is JsonObject o
                ? Text(o, "value") ?? Text(o, "text") ?? ""
                : throw new DllmException($"{where}: each part of a message's content must be an object with a 'value' or 'text'"))),
            _ => throw new DllmException($"{where}: a message's content must be text"),
        });
    }

    private static string? Text(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static string Scalar(JsonNode node, string where, string field) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new DllmException($"{where}: '{field}' must be a string");
}
