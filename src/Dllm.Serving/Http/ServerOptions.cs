using System.Net;
using System.Net.NetworkInformation;
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
    /// <summary>Prompt tokens whose keys and values are kept for prompts that start the same way (0: off).</summary>
    public long PrefixCacheTokens { get; init; } = Scheduling.SchedulerOptions.DefaultPrefixCacheTokens;
    /// <summary>While requests decode, a joining prompt is prefilled at most this many tokens per step (0: at once).</summary>
    public int PrefillChunk { get; init; } = Scheduling.SchedulerOptions.DefaultPrefillChunk;
    /// <summary>Most tokens (prompts plus token limits) the running batch holds at once (0: no bound beyond <see cref="MaxBatch"/>).</summary>
    public long MaxBatchTokens { get; init; }
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
        _ = ListenAddress();
        if (Port is < 0 or > 65535) throw new DllmException($"port must be between 0 and 65535, got {Port}");
        if (MaxRequestBodyBytes < 1) throw new DllmException($"the request body limit (--max-body-bytes) must be at least 1 byte, got {MaxRequestBodyBytes}");
        if (DrainTimeout < TimeSpan.Zero) throw new DllmException($"drain timeout must not be negative, got {DrainTimeout}");
        SchedulerOptions().Validate();
    }

    /// <summary>The scheduler's share of these options.</summary>
    public Scheduling.SchedulerOptions SchedulerOptions() => new(MaxBatch, MaxQueue, PrefixCacheTokens, PrefillChunk, MaxBatchTokens);

    /// <summary>The Kestrel listen URL (IPv6 literals in brackets).</summary>
    public string Url => $"http://{(Host.Contains(':') && !Host.StartsWith('[') ? $"[{Host}]" : Host)}:{Port}";

    /// <summary>True for "localhost", which binds both loopback addresses.</summary>
    public bool IsLocalhost => Host.Trim().Equals("localhost", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The one address to bind (null for localhost). Only an IP literal that this machine owns, a loopback, or
    /// 0.0.0.0 / :: (every interface, asked for explicitly) is accepted: a name Kestrel cannot parse would
    /// otherwise make it listen on every interface, the opposite of what a typo deserves.
    /// </summary>
    public IPAddress? ListenAddress()
    {
        if (IsLocalhost) return null;
        var text = Host.Trim();
        if (text.StartsWith('[') && text.EndsWith(']')) text = text[1..^1];
        if (!IPAddress.TryParse(text, out var ip) || !text.Any(c => c is '.' or ':'))
            throw new DllmException($"--host '{Host}' is not an IP address: use 127.0.0.1 (this machine only), 0.0.0.0 (every interface), ::1, ::, localhost, or an address of one of this machine's interfaces");
        if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any) || IPAddress.IsLoopback(ip)) return ip;
        var own = LocalAddresses();
        if (!own.Contains(ip))
            throw new DllmException($"--host {ip} is not an address of this machine (its addresses: {string.Join(", ", own)}); use 127.0.0.1 for this machine only or 0.0.0.0 for every interface");
        return ip;
    }

    private static List<IPAddress> LocalAddresses()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces().SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(u => u.Address).ToList();
        }
        catch (NetworkInformationException)
        {
            return [];
        }
    }
}
