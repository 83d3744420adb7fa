using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Dllm.Serving.Http;

/// <summary>Writes JSON bodies and server-sent events the way OpenAI clients read them.</summary>
internal static class JsonWire
{
    // Relaxed escaping keeps non-ASCII text readable; the content type already says UTF-8 JSON.
    private static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public const string EventStream = "text/event-stream";

    public static string Text(JsonNode node) => node.ToJsonString(Options);

    public static Task WriteAsync(HttpContext context, JsonNode body, int status = StatusCodes.Status200OK)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        return context.Response.WriteAsync(Text(body), context.RequestAborted);
    }

    public static void StartEvents(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = EventStream + "; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";   // keeps reverse proxies from holding chunks back
    }

    /// <summary>One "data: ...\n\n" event, flushed so the client sees it now.</summary>
    public static async Task WriteEventAsync(HttpContext context, string data)
    {
        await context.Response.WriteAsync("data: " + data + "\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    public static bool IsEventStream(HttpResponse response) =>
        response.ContentType?.StartsWith(EventStream, StringComparison.Ordinal) == true;
}
