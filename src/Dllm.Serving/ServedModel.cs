using Dllm.Chat;
using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Serving;

/// <summary>
/// The model as clients name and talk to it: its id (the checkpoint folder's name unless given), the chat
/// template its conversations are rendered with, and which names a request may use for it.
/// </summary>
public sealed class ServedModel
{
    /// <summary>Accepted as a model name besides the id, so clients need not know the folder name.</summary>
    public const string DefaultAlias = "default";

    public ServedModel(LoadedModel model, string? id = null, ChatTemplate? template = null)
    {
        Model = model;
        Id = string.IsNullOrWhiteSpace(id) ? model.Name : id;
        Template = template ?? ChatTemplate.For(model.Tokenizer);
        Mode = TextGeneration.ResolveMode(model, DecodeMode.Auto);
    }

    public LoadedModel Model { get; }
    public string Id { get; }
    public ChatTemplate Template { get; }
    public DecodeMode Mode { get; }
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    public int ContextLength => Model.Model.Config.MaxPositionEmbeddings;

    /// <summary>Throws a 404 error unless <paramref name="name"/> is absent, the id, or "default".</summary>
    public void CheckName(string? name)
    {
        if (name is null || name == Id || name == DefaultAlias) return;
        throw new RequestError($"the model '{name}' does not exist: this server serves '{Id}' (also reachable as '{DefaultAlias}')",
            "model", "model_not_found", 404);
    }

    /// <summary>The conversation as the model's prompt; roles are system, user, assistant and developer (a system turn).</summary>
    public string RenderChat(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0) throw new RequestError("messages must hold at least one message", "messages");
        var mapped = new List<ChatMessage>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var role = messages[i].Role switch
            {
                "system" or "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                var other => throw new RequestError($"messages[{i}].role '{other}' is not supported: use system, developer, user or assistant", $"messages[{i}].role"),
            };
            mapped.Add(messages[i] with { Role = role });
        }
        return Template.Render(mapped, addGenerationPrompt: true);
    }
}
