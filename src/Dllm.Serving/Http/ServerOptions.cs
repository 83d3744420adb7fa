using Dllm.Chat;

namespace Dllm.Serving.Http;

/// <summary>
/// Where and how <see cref="DllmServer"/> listens. Port 0 picks a free port (read it from
/// <see cref="DllmServer.BaseAddress"/>). <see cref="DrainTimeout"/> bounds a graceful stop: in-flight
/// requests finish within it, then what is left is cancelled. <see cref="HandleSignals"/> lets Ctrl-C and
/// SIGTERM stop the server (the CLI wants that; a host process embedding the server usually does not).
/// </summary>
public sealed record ServerOptions
{
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8000;
    public int MaxBatch { get; init; } = 8;
    public int MaxQueue { get; init; } = 64;
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest request body accepted (larger ones get 413); 4 MiB holds any prompt a 128k context takes.</summary>
    public long MaxRequestBodyBytes { get; init; } = 4L << 20;
    /// <summary>The model id clients use; null: the checkpoint folder's name.</summary>
    public string? ModelId { get; init; }
    /// <summary>The chat template; null: recognised from tokenizer_config.json, else plain.</summary>
    public ChatTemplate? Template { get; init; }
    public bool HandleSignals { get; init; }

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new DllmException("the host must not be empty");
        if (Port is < 0 or > 65535) throw new DllmException($"port must be between 0 and 65535, got {Port}");
        if (MaxRequestBodyBytes < 1) throw new DllmException($"the request body limit must be at least 1 byte, got {MaxRequestBodyBytes}");
        if (DrainTimeout < TimeSpan.Zero) throw new DllmException($"drain timeout must not be negative, got {DrainTimeout}");
        new Scheduling.SchedulerOptions(MaxBatch, MaxQueue).Validate();
    }

    /// <summary>The Kestrel listen URL (IPv6 literals in brackets).</summary>
    public string Url => $"http://{(Host.Contains(':') && !Host.StartsWith('[') ? $"[{Host}]" : Host)}:{Port}";
}
