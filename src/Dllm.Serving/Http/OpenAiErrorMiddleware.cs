using Dllm.Serving.OpenAi;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Dllm.Serving.Http;

/// <summary>
/// Turns every failure into OpenAI's error shape so no request can take the server down: user errors
/// become 4xx, anything else a logged 500. A failure after a stream started is sent as a last event.
/// A client that left needs no answer.
/// </summary>
internal sealed class OpenAiErrorMiddleware(RequestDelegate next, ILogger<OpenAiErrorMiddleware> log)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client disconnected: its generation was cancelled through the request's token.
        }
        catch (Exception e)
        {
            var error = ApiError.From(e);
            if (error.IsServerFault) log.LogError(e, "{Method} {Path} failed", context.Request.Method, context.Request.Path);
            else log.LogDebug("{Method} {Path}: {Status} {Message}", context.Request.Method, context.Request.Path, error.Status, error.Message);
            try
            {
                if (!context.Response.HasStarted)
                {
                    if (error.Status == StatusCodes.Status429TooManyRequests) context.Response.Headers.RetryAfter = "1";
                    await JsonWire.WriteAsync(context, error.Body(), error.Status);
                }
                else if (JsonWire.IsEventStream(context.Response))
                    await JsonWire.WriteEventAsync(context, JsonWire.Text(error.Body()));
            }
            catch (Exception) when (context.RequestAborted.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>For 404/405 answers the router gives without a body.</summary>
    public static Task WriteStatusAsync(HttpContext context) =>
        JsonWire.WriteAsync(context, ApiError.ForStatus(context.Response.StatusCode).Body(), context.Response.StatusCode);
}
