using System.Text.Json.Nodes;
using Dllm.Generation;
using Dllm.Serving.OpenAi;
using Dllm.Serving.Scheduling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Dllm.Serving.Http;

/// <summary>The routes: each reads and checks its body, submits to the scheduler and hands the answer to the responder.</summary>
internal sealed class OpenAiEndpoints(ServedModel served, GenerationScheduler scheduler)
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", ChatAsync);
        app.MapPost("/v1/completions", CompletionAsync);
        app.MapGet("/v1/models", (HttpContext c) => JsonWire.WriteAsync(c, new JsonObject { ["object"] = "list", ["data"] = new JsonArray(ModelCard()) }));
        app.MapGet("/v1/models/{id}", (HttpContext c, string id) =>
        {
            served.CheckName(id);
            return JsonWire.WriteAsync(c, ModelCard());
        });
        // 503 while draining, so a load balancer takes this instance out of rotation.
        app.MapGet("/health", (HttpContext c) => JsonWire.WriteAsync(c, Health(), scheduler.IsClosing ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK));
    }

    private async Task ChatAsync(HttpContext context)
    {
        var body = ChatCompletionBody.Read(await JsonRequest.ReadAsync(context.Request, context.RequestAborted));
        served.CheckName(body.Model);
        var template = served.Template;
        var request = body.Settings.ToRequest(served.Model, served.RenderChat(body.Messages), template.AddSpecialTokens, template.StopStrings, context.RequestAborted);
        var generation = Submit(request, "messages");
        await CompletionResponder.RespondAsync(context, generation, new ChatCompletionFormat(NewId("chatcmpl-"), served.Id, body.IncludeUsage), body.Stream);
    }

    private async Task CompletionAsync(HttpContext context)
    {
        var body = CompletionBody.Read(await JsonRequest.ReadAsync(context.Request, context.RequestAborted));
        served.CheckName(body.Model);
        var request = body.Settings.ToRequest(served.Model, body.Prompt, addSpecialTokens: true, [], context.RequestAborted);
        var generation = Submit(request, "prompt");
        await CompletionResponder.RespondAsync(context, generation, new TextCompletionFormat(NewId("cmpl-"), served.Id, body.IncludeUsage), body.Stream);
    }

    private ScheduledGeneration Submit(GenerationRequest request, string promptParam)
    {
        try
        {
            return scheduler.Submit(request);
        }
        catch (RequestError e)
        {
            throw e.WithParam(promptParam);
        }
    }

    private JsonObject ModelCard() => new()
    {
        ["id"] = served.Id,
        ["object"] = "model",
        ["created"] = served.Created.ToUnixTimeSeconds(),
        ["owned_by"] = "dllm",
        ["context_length"] = served.ContextLength,
        ["decoding"] = served.Mode.ToString().ToLowerInvariant(),
    };

    private JsonObject Health()
    {
        var s = scheduler.Stats;
        return new JsonObject
        {
            ["status"] = scheduler.IsClosing ? "draining" : "ok",
            ["model"] = served.Id,
            ["decoding"] = served.Mode.ToString().ToLowerInvariant(),
            ["max_batch"] = scheduler.Options.MaxBatch,
            ["max_queue"] = scheduler.Options.MaxQueue,
            ["max_batch_tokens"] = scheduler.Options.MaxBatchTokens,
            ["queued"] = s.Queued,
            ["running"] = s.Running,
            ["batches"] = s.Batches,
            ["largest_batch"] = s.LargestBatch,
            ["completed"] = s.Completed,
            ["cancelled"] = s.Cancelled,
            ["failed"] = s.Failed,
            ["rejected"] = s.Rejected,
            ["forwards"] = s.Forwards,
            ["mean_batch_size"] = Math.Round(s.MeanBatchSize, 3),
            ["mean_batch_size_last_minute"] = Math.Round(s.MeanBatchSizeLastMinute, 3),
            ["kv_cache_bytes"] = s.KvCacheBytes,
            ["largest_kv_cache_bytes"] = s.LargestKvCacheBytes,
            ["prefix_cache"] = new JsonObject
            {
                ["capacity_tokens"] = scheduler.Options.PrefixCacheTokens,
                ["stored_tokens"] = s.PrefixStoredTokens,
                ["reused_tokens"] = s.PrefixReusedTokens,
                ["looked_up_tokens"] = s.PrefixLookedUpTokens,
            },
        };
    }

    private static string NewId(string prefix) => prefix + Guid.NewGuid().ToString("N")[..24];
}
