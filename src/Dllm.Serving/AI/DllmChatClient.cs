using System.Runtime.CompilerServices;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Serving.Scheduling;
using Microsoft.Extensions.AI;

namespace Dllm.Serving.AI;

/// <summary>
/// A Microsoft.Extensions.AI chat client over a local model, without HTTP. Requests go through a
/// <see cref="GenerationScheduler"/>, so concurrent callers (and, when the scheduler is a server's, HTTP
/// clients) share decoding batches. Greedy requests give the same text as the server's endpoint.
/// Invalid input throws <see cref="DllmException"/> (a <see cref="RequestError"/> naming the setting).
/// </summary>
public sealed class DllmChatClient : IChatClient
{
    private readonly GenerationScheduler _scheduler;
    private readonly ServedModel _served;
    private readonly bool _ownsScheduler;

    /// <summary>Shares <paramref name="scheduler"/> (e.g. a running server's); disposing this client leaves it running.</summary>
    public DllmChatClient(GenerationScheduler scheduler, ServedModel? served = null)
    {
        _scheduler = scheduler;
        _served = served ?? new ServedModel(scheduler.Model);
        Metadata = new ChatClientMetadata("dllm", defaultModelId: _served.Id);
    }

    private DllmChatClient(GenerationScheduler scheduler, ServedModel served, bool owns) : this(scheduler, served) => _ownsScheduler = owns;

    /// <summary>A client with its own scheduler (disposed with the client; the model stays the caller's).</summary>
    public static DllmChatClient Create(LoadedModel model, SchedulerOptions? options = null, ServedModel? served = null) =>
        new(new GenerationScheduler(model, options), served ?? new ServedModel(model), owns: true);

    public ChatClientMetadata Metadata { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var generation = Submit(messages, options, cancellationToken);
        GenerationResult? result = null;
        await foreach (var e in generation.Events(cancellationToken).ConfigureAwait(false)) result ??= e.Result;
        if (result is null) throw new InvalidOperationException("the generation ended without a result");
        var response = new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text))
        {
            ResponseId = NewId(),
            ModelId = _served.Id,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(result.Finish),
            Usage = Usage(result),
        };
        response.AdditionalProperties = new() { ["tokens_per_forward"] = result.TokensPerForward };
        return response;
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var generation = Submit(messages, options, cancellationToken);
        var id = NewId();
        var created = DateTimeOffset.UtcNow;
        await foreach (var e in generation.Events(cancellationToken).ConfigureAwait(false))
        {
            if (e.Delta.Length > 0)
                yield return new ChatResponseUpdate(ChatRole.Assistant, e.Delta) { ResponseId = id, MessageId = id, ModelId = _served.Id, CreatedAt = created };
            if (e.Result is { } result)
                yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(Usage(result))])
                {
                    ResponseId = id, MessageId = id, ModelId = _served.Id, CreatedAt = created, FinishReason = Finish(result.Finish),
                };
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is not null ? null : serviceType switch
    {
        _ when serviceType == typeof(ChatClientMetadata) => Metadata,
        _ when serviceType == typeof(GenerationScheduler) => _scheduler,
        _ when serviceType.IsInstanceOfType(this) => this,
        _ => null,
    };

    public void Dispose()
    {
        if (_ownsScheduler) _scheduler.Dispose();
    }

    private ScheduledGeneration Submit(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancel)
    {
        _served.CheckName(options?.ModelId);
        var settings = ChatOptionsMapping.Settings(options);
        var prompt = _served.RenderChat(ChatOptionsMapping.Messages(messages, options));
        var template = _served.Template;
        try
        {
            return _scheduler.Submit(settings.ToRequest(_served.Model, prompt, template.AddSpecialTokens, template.StopStrings, cancel));
        }
        catch (RequestError e)
        {
            throw e.WithParam("messages");
        }
    }

    private static ChatFinishReason Finish(FinishReason finish) => finish switch
    {
        FinishReason.Length => ChatFinishReason.Length,
        _ => ChatFinishReason.Stop,
    };

    private static UsageDetails Usage(GenerationResult r) => new()
    {
        InputTokenCount = r.PromptTokens,
        OutputTokenCount = r.TokenIds.Length,
        TotalTokenCount = r.PromptTokens + r.TokenIds.Length,
        AdditionalCounts = new() { ["forwards"] = r.Forwards },
    };

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
}
