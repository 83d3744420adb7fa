using Dllm.Generation;
using Dllm.Serving.OpenAi;
using Dllm.Serving.Scheduling;
using Microsoft.AspNetCore.Http;

namespace Dllm.Serving.Http;

/// <summary>
/// Answers one scheduled generation: a single JSON object, or server-sent events (opening chunk, one chunk
/// per new text, a final chunk with the finish reason, the usage chunk when asked for, then [DONE]).
/// </summary>
internal static class CompletionResponder
{
    public static async Task RespondAsync(HttpContext context, ScheduledGeneration generation, CompletionFormat format, bool stream)
    {
        var cancel = context.RequestAborted;
        if (!stream)
        {
            GenerationResult? result = null;
            await foreach (var e in generation.Events(cancel)) result ??= e.Result;
            await JsonWire.WriteAsync(context, format.Full(result ?? throw new InvalidOperationException("the generation ended without a result")));
            return;
        }

        JsonWire.StartEvents(context);
        foreach (var chunk in format.Opening()) await JsonWire.WriteEventAsync(context, JsonWire.Text(chunk));
        await foreach (var e in generation.Events(cancel))
        {
            if (e.Delta.Length > 0) await JsonWire.WriteEventAsync(context, JsonWire.Text(format.Delta(e.Delta)));
            if (e.Result is not { } result) continue;
            await JsonWire.WriteEventAsync(context, JsonWire.Text(format.Finish(result.Finish)));
            if (format.IncludeUsage) await JsonWire.WriteEventAsync(context, JsonWire.Text(format.UsageChunk(result)));
        }
        await JsonWire.WriteEventAsync(context, "[DONE]");
    }
}
