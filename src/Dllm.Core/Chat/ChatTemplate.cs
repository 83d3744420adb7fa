using System.Text;
using Dllm.Tokenization;

namespace Dllm.Chat;

/// <summary>
/// Renders a conversation into the prompt text a model was trained on. We implement the known
/// templates directly (ChatML for Qwen, Llama 3, Ling/LLaDA2) and pick one by recognising the
/// tokenizer_config.json chat_template; "plain" is a readable fallback for models without one.
/// Rendering is checked against the strings the official templates produce.
/// </summary>
public abstract class ChatTemplate
{
    public abstract string Name { get; }

    /// <summary>Whether the tokenizer should add its own BOS: templates that spell their special tokens say no.</summary>
    public virtual bool AddSpecialTokens => false;

    /// <summary>Stop strings that end an assistant turn besides the tokenizer's stop tokens.</summary>
    public virtual IReadOnlyList<string> StopStrings => [];

    /// <summary>The special token that closes an assistant turn (what fine-tuning teaches the model to emit), if any.</summary>
    public virtual string? EndOfTurn => null;

    /// <summary>The conversation as text; with <paramref name="addGenerationPrompt"/>, ends where the assistant's reply begins.</summary>
    public abstract string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true);

    public static IReadOnlyList<string> Names => ["chatml", "llama3", "ling", "plain"];

    public static ChatTemplate ByName(string name) => name switch
    {
        "chatml" => new ChatMlTemplate(),
        "llama3" => new Llama3Template(),
        "ling" => new LingTemplate(),
        "plain" => new PlainTemplate(),
        _ => throw new DllmException($"unknown chat template '{name}': use {string.Join(", ", Names)}"),
    };

    /// <summary>The template the tokenizer declares, when it is one we know; else plain.</summary>
    public static ChatTemplate For(TextTokenizer tokenizer) => Detect(tokenizer.ChatTemplate) ?? new PlainTemplate();

    public static ChatTemplate? Detect(string? jinja) => jinja switch
    {
        null => null,
        _ when jinja.Contains("<|im_start|>", StringComparison.Ordinal) => new ChatMlTemplate(),
        _ when jinja.Contains("<|start_header_id|>", StringComparison.Ordinal) => new Llama3Template(),
        _ when jinja.Contains("<role>", StringComparison.Ordinal) => new LingTemplate(),
        _ => null,
    };

    protected static void Check(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0) throw new DllmException("a conversation needs at least one message");
        foreach (var m in messages)
            if (m.Role is not ("system" or "user" or "assistant"))
                throw new DllmException($"unknown message role '{m.Role}': use system, user or assistant");
    }
}

/// <summary>Qwen2/Qwen3: &lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n; the reply starts after "&lt;|im_start|&gt;assistant\n".</summary>
public sealed class ChatMlTemplate : ChatTemplate
{
    public override string Name => "chatml";

    public override string? EndOfTurn => "<|im_end|>";

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        Check(messages);
        var sb = new StringBuilder();
        foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
        return sb.ToString();
    }
}

/// <summary>Llama 3: BOS, then a header per message and trimmed content closed by &lt;|eot_id|&gt;.</summary>
public sealed class Llama3Template : ChatTemplate
{
    public override string Name => "llama3";

    public override string? EndOfTurn => "<|eot_id|>";

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        Check(messages);
        var sb = new StringBuilder("<|begin_of_text|>");
        foreach (var m in messages)
            sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
        if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        return sb.ToString();
    }
}

/// <summary>
/// Ling 2.0 / LLaDA2.0: a SYSTEM turn (the first system message plus "\n", then "detailed thinking off")
/// always opens; turns are &lt;role&gt;HUMAN|ASSISTANT|SYSTEM&lt;/role&gt;content&lt;|role_end|&gt;.
/// </summary>
public sealed class LingTemplate : ChatTemplate
{
    public override string Name => "ling";

    public override string? EndOfTurn => "<|role_end|>";

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        Check(messages);
        var sb = new StringBuilder("<role>SYSTEM</role>");
        var rest = messages;
        if (messages[0].Role == "system")
        {
            sb.Append(messages[0].Content).Append('\n');
            rest = messages.Skip(1).ToList();
        }
        sb.Append("detailed thinking off<|role_end|>");
        foreach (var m in rest)
        {
            var role = m.Role switch { "user" => "HUMAN", "assistant" => "ASSISTANT", _ => "SYSTEM" };
            sb.Append("<role>").Append(role).Append("</role>").Append(m.Content).Append("<|role_end|>");
        }
        if (addGenerationPrompt) sb.Append("<role>ASSISTANT</role>");
        return sb.ToString();
    }
}

/// <summary>For models without a chat template: "User: ...\nAssistant: ..." lines.</summary>
public sealed class PlainTemplate : ChatTemplate
{
    public override string Name => "plain";

    public override bool AddSpecialTokens => true;

    public override IReadOnlyList<string> StopStrings => ["\nUser:"];

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        Check(messages);
        var sb = new StringBuilder();
        foreach (var m in messages)
            sb.Append(m.Role switch { "system" => "System", "user" => "User", _ => "Assistant" }).Append(": ").Append(m.Content).Append('\n');
        if (addGenerationPrompt) sb.Append("Assistant:");
        return sb.ToString();
    }
}
