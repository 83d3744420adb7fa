namespace Dllm;

/// <summary>
/// An error caused by the user's input (a path, a file, an option, a request) rather than by a bug.
/// The CLI prints its message as one line and exits non-zero; the server maps it to a 4xx answer.
/// </summary>
public class DllmException : Exception
{
    public DllmException(string message) : base(message) { }
    public DllmException(string message, Exception inner) : base(message, inner) { }
}
