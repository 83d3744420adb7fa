using System.CommandLine;
using Dllm.Chat;
using Dllm.Models;
using Dllm.Serving.Http;
using Microsoft.Extensions.Logging;

namespace Dllm.Cli.Commands;

internal static class ServeCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model();
        var host = new Option<string>("--host") { Description = "IP address to listen on: 127.0.0.1 (this machine only, the default), 0.0.0.0 or :: (every interface), localhost, or an address of one of this machine's interfaces; anything else is refused", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 = pick a free one and print it)", DefaultValueFactory = _ => 8000 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most requests decoded together in one batch (1 = one at a time)", DefaultValueFactory = _ => 8 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Most requests waiting for the model; more get HTTP 429", DefaultValueFactory = _ => 64 };
        var prefixCache = new Option<long>("--prefix-cache-tokens")
        {
            Description = "Prompt tokens whose keys and values are kept, so a prompt that starts like an earlier one (a system prompt, " +
                          "a chat history) prefills only what is new; least recently used first out; 0 = off",
            DefaultValueFactory = _ => new ServerOptions().PrefixCacheTokens,
        };
        var prefillChunk = new Option<int>("--prefill-chunk")
        {
            Description = "While requests decode, a joining prompt is prefilled at most this many tokens per step (block decoding: whole " +
                          "blocks), so a long prompt delays the others' steps by a chunk instead of its whole prefill; 0 = at once",
            DefaultValueFactory = _ => new ServerOptions().PrefillChunk,
        };
        var maxBatchTokens = new Option<long>("--max-batch-tokens")
        {
            Description = "Most tokens the running batch holds at once, each request counted as its prompt plus its max_tokens (what its " +
                          "KV cache can grow to): bounds the cache's memory whatever the mix of requests. A request's max_tokens is clamped " +
                          "to fit alone; others wait until enough leave. 0 = no bound beyond --max-batch",
            DefaultValueFactory = _ => 0,
        };
        var template = new Option<string?>("--template") { Description = $"Chat template: {string.Join(", ", ChatTemplate.Names)} (default: recognised from tokenizer_config.json, else plain)" };
        var modelId = new Option<string?>("--model-id") { Description = "The model name clients send (default: the model folder's name; 'default' is always accepted too)" };
        var drain = new Option<double>("--drain-timeout") { Description = "Seconds Ctrl-C/SIGTERM waits for in-flight requests before cancelling them", DefaultValueFactory = _ => 30 };
        var bodyLimit = new Option<long>("--max-body-bytes")
        {
            Description = "Largest request body accepted; a bigger one gets HTTP 413 with an OpenAI-style error (default 4 MiB)",
            DefaultValueFactory = _ => new ServerOptions().MaxRequestBodyBytes,
        };
        var threads = SharedOptions.Threads();
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log every request and batch" };
        var device = SharedOptions.Device();
        var dtype = SharedOptions.DType();
        var command = new Command("serve",
            "Serve a model over an OpenAI-compatible HTTP API: POST /v1/chat/completions and /v1/completions (with " +
            "\"stream\": true for server-sent events), GET /v1/models and GET /health. Any OpenAI client works with base " +
            "URL http://HOST:PORT/v1 and any API key. Diffusion checkpoints decode block-wise in parallel, AR checkpoints " +
            "token by token. Extra request fields: top_k, and for diffusion block_size, threshold, max_steps_per_block, " +
            "editing_threshold and max_post_steps (LLaDA2.1 token editing); " +
            "usage also reports forwards and tokens_per_forward. Concurrent requests with the same decoding settings are " +
            "batched (up to --max-batch) on one decode thread; prompts that share a prefix prefill it once (--prefix-cache-tokens). Ctrl-C drains: in-flight requests finish first. " +
            "Example: dllm serve -m ./my-dllm --port 8000, then curl http://127.0.0.1:8000/v1/chat/completions " +
            "-H 'Content-Type: application/json' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'")
        {
            model, host, port, maxBatch, maxQueue, maxBatchTokens, prefixCache, prefillChunk, bodyLimit, template, modelId, drain, threads, verbose, device, dtype,
        };
        // A synchronous action: the web host owns Ctrl-C/SIGTERM and drains within --drain-timeout, which
        // the CLI's own termination handling (a short fixed grace period for async actions) would cut short.
        command.SetAction(p =>
        {
            var options = new ServerOptions
            {
                Host = p.GetValue(host)!,
                Port = p.GetValue(port),
                MaxBatch = p.GetValue(maxBatch),
                MaxQueue = p.GetValue(maxQueue),
                MaxBatchTokens = p.GetValue(maxBatchTokens),
                PrefixCacheTokens = p.GetValue(prefixCache),
                PrefillChunk = p.GetValue(prefillChunk),
                DrainTimeout = TimeSpan.FromSeconds(p.GetValue(drain)),
                MaxRequestBodyBytes = p.GetValue(bodyLimit),
                ModelId = p.GetValue(modelId),
                Template = p.GetValue(template) is { } name ? ChatTemplate.ByName(name) : null,
                HandleSignals = true,
            };
            options.Validate();
            SharedOptions.ApplyThreads(p, threads);
            using var loaded = LoadedModel.Load(p.GetValue(model)!, SharedOptions.LoadOptions(p, device, dtype));
            var level = p.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information;
            var server = DllmServer.StartAsync(loaded, options, logging => logging
                .AddSimpleConsole(c => { c.SingleLine = true; c.TimestampFormat = "HH:mm:ss "; })
                .SetMinimumLevel(LogLevel.Warning)
                .AddFilter("Dllm", level)
                .AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information)
                .AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None)).GetAwaiter().GetResult();   // start failures are reported as one line below
            try
            {
                var err = Output.Err(p);
                err.WriteLine($"serving {server.Served.Id} ({server.Served.Mode.ToString().ToLowerInvariant()} decoding, {server.Served.Template.Name} template, " +
                              $"context {server.Served.ContextLength}) at {server.BaseAddress}v1, listening on {string.Join(" and ", server.Listening)}" +
                              (server.Listening.Any(u => u.Contains("0.0.0.0") || u.Contains("[::]")) ? " (every interface)" : "") +
                              $" - max batch {options.MaxBatch}{(options.MaxBatchTokens > 0 ? $" ({options.MaxBatchTokens} tokens)" : "")}, queue {options.MaxQueue}, prefix cache {options.PrefixCacheTokens} tokens, " +
                              $"prefill chunk {(options.PrefillChunk == 0 ? "off" : $"{options.PrefillChunk} tokens")}; Ctrl-C drains and stops");
                err.Flush();
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return 0;
        });
        return command;
    }
}
