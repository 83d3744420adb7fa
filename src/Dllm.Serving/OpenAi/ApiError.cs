using System.Text.Json.Nodes;
using Dllm.Generation;
using Dllm.Serving.Scheduling;
using Microsoft.AspNetCore.Http;

namespace Dllm.Serving.OpenAi;

/// <summary>An error as OpenAI answers it: a status and {"error": {message, type, param, code}}.</summary>
internal sealed record ApiError(int Status, string Message, string Type, string? Param = null, string? Code = null)
{
    // A 503 while draining is the expected answer, not a fault worth a stack trace in the log.
    public bool IsServerFault => Status >= 500 && Status != 503;

    public static ApiError From(Exception e) => e switch
    {
        RequestError r => new(r.Status, r.Message, TypeFor(r.Status), r.Param, r.Code),
        NonFiniteLogitsException n => new(500, n.Message, "server_error", Code: "non_finite_logits"),
        DllmException d => new(400, d.Message, "invalid_request_error"),
        QueueFullException q => new(429, q.Message, "rate_limit_error", Code: "queue_full"),
        SchedulerClosedException s => new(503, s.Message, "server_error", Code: "shutting_down"),
        OperationCanceledException => new(503, "the server stopped before this request finished", "server_error", Code: "shutting_down"),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } b => new(413, b.Message, "invalid_request_error", Code: "request_too_large"),
        BadHttpRequestException b => new(b.StatusCode, b.Message, TypeFor(b.StatusCode)),
        // First line only: native (libtorch) errors append a C++ stack trace that belongs in the log, not the answer.
        _ => new(500, $"internal error ({e.GetType().Name}): {FirstLine(e.Message)}", "server_error"),
    };

    public static ApiError ForStatus(int status) => status switch
    {
        404 => new(404, "no such endpoint: dllm serves POST /v1/chat/completions, POST /v1/completions, GET /v1/models and GET /health", "invalid_request_error", Code: "not_found"),
        405 => new(405, "method not allowed for this endpoint", "invalid_request_error", Code: "method_not_allowed"),
        _ => new(status, $"HTTP {status}", TypeFor(status)),
    };

    private static string FirstLine(string message) => message.Split('\n', 2)[0].TrimEnd();

    private static string TypeFor(int status) => status >= 500 ? "server_error" : "invalid_request_error";

    public JsonObject Body() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };
}
