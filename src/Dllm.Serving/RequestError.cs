namespace Dllm.Serving;

/// <summary>
/// A request the server refuses, with what an OpenAI error body carries: the HTTP status, the offending
/// parameter and a machine-readable code. A <see cref="DllmException"/>, so in-process callers (the
/// IChatClient) see the same user-error type the rest of dllm throws.
/// </summary>
public sealed class RequestError : DllmException
{
    public RequestError(string message, string? param = null, string? code = null, int status = 400) : base(message)
    {
        Param = param;
        Code = code;
        Status = status;
    }

    public string? Param { get; }
    public string? Code { get; }
    public int Status { get; }

    /// <summary>The same error naming <paramref name="param"/>, for checks that cannot know which field fed them.</summary>
    public RequestError WithParam(string param) => Param is null ? new RequestError(Message, param, Code, Status) : this;
}
