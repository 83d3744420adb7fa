using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Demo;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using Dllm.Serving.Http;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Bench;

/// <summary>
/// Serving throughput and latency: the real HTTP server on loopback, closed-loop clients (each sends its next
/// request when the last is answered) at several counts, continuous batching (--max-batch 16) against one request
/// at a time (--max-batch 1), for an AR checkpoint and the same weights as a diffusion checkpoint. Every request
/// streams, so time to first token is the wait for the first chunk that carries text; sequences per decoding
/// forward come from the scheduler's counters. The model is Llama-shaped with random weights (speed does not
/// depend on their values) and a byte-level BPE learned from the demo's synthetic stories.
/// With --chat N every client holds conversations of N turns instead: the prompt of turn k is a shared system prompt,
/// the turns before it (messages and the server's answers) and a new message, the workload prefix reuse is for;
/// --prefix-cache takes the server's --prefix-cache-tokens values to compare (0 = off). With --long-every N every Nth
/// request has a long prompt (--long-words, default 250 words); --prefill-chunk takes the server's values to compare
/// (0 = prefill at once), and the table shows how long the other requests' streams stalled (their longest gap
/// between two chunks of text). With --ar DIR --dllm DIR (for example the demo's ar and cap) it serves those trained
/// checkpoints instead, with prompts from --tasks (the held-out tasks' prompt field), so the diffusion rows show a
/// dLLM that decides a block in a few steps.
/// </summary>
public static class ServeBenchmark
{
    private sealed record Options(int Requests, int[] Clients, int MaxTokens, int Threads, string[] Modes, int[] Batches, int ChatTurns, long[] PrefixCaches,
        int LongEvery, int LongWords, int[] PrefillChunks, string? Ar, string? Dllm, string? Tasks);

    private sealed record Outcome(string Mode, int Clients, int MaxBatch, long PrefixCache, int PrefillChunk, int Requests, double Seconds, long CompletionTokens,
        long DecodedTokens, long Forwards, double[] LatenciesMs, double[] FirstTokenMs, double MeanBatch, int LargestBatch, long ReusedTokens, long LookedUpTokens, double[] ShortGapsMs);

    public static JsonObject Config10M() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["vocab_size"] = 1024,
        ["hidden_size"] = 384,
        ["intermediate_size"] = 1024,
        ["num_hidden_layers"] = 6,
        ["num_attention_heads"] = 6,
        ["num_key_value_heads"] = 2,
        ["max_position_embeddings"] = 512,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0,
        ["tie_word_embeddings"] = true,
    };

    public static void Run(string[] args)
    {
        var options = Parse(args);
        TorchRuntime.EnsureLoaded();
        if (options.Threads > 0) set_num_threads(options.Threads);
        var root = Path.Combine(Path.GetTempPath(), $"dllm-serve-bench-{Guid.NewGuid():N}");
        try
        {
            var trained = options.Ar is not null;
            var (ar, diffusion, parameters) = trained ? (options.Ar!, options.Dllm!, 0L) : WriteCheckpoints(root);
            var prompts = trained
                ? Evaluation.TaskFile.Read(options.Tasks!).Select(t => t.Prompt).Take(options.Requests).ToArray()
                : SyntheticCorpus.Stories(options.Requests, seed: 7)
                    .Select(s => string.Join(' ', s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(options.ChatTurns > 0 ? 12 : 24))).ToArray();
            var system = options.ChatTurns > 0 ? string.Join(' ', SyntheticCorpus.Stories(3, seed: 99)).Split(' ').Take(120) : [];
            if (options.LongEvery > 0)
            {
                // Every long prompt differs from its first word on, so the prefix cache cannot shortcut their prefill.
                var words = string.Join(' ', SyntheticCorpus.Stories(400, seed: 98)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                for (var (i, k) = (options.LongEvery - 1, 0); i < prompts.Length; i += options.LongEvery, k++)
                    prompts[i] = $"{k}: " + string.Join(' ', words.Skip(k * 101 % Math.Max(1, words.Length - options.LongWords)).Take(options.LongWords));
            }
            Console.WriteLine($"machine: {Timing.Machine()}");
            Console.WriteLine(trained
                ? $"models: AR {Path.GetFullPath(ar)}, diffusion {Path.GetFullPath(diffusion)} (its block size, threshold 0.95); prompts: the first {prompts.Length} of {options.Tasks}"
                : $"model: Llama-shaped, {parameters / 1e6:F1} M parameters, fp32, context 512, vocab 1024; diffusion = same weights with a MASK token, block 32, threshold 0.95");
            Console.WriteLine(options.ChatTurns > 0
                ? $"load: {options.Requests} requests as conversations of {options.ChatTurns} turns (a shared 120-word system prompt, then per turn a 12-word message and the answer), " +
                  $"{string.Join("/", options.Clients)} closed-loop clients, max_tokens {options.MaxTokens}, greedy, streamed"
                : $"load: {prompts.Length} requests ({(trained ? "held-out task prompts" : "synthetic story openings, 24 words")}" +
                  $"{(options.LongEvery > 0 ? $"; every {options.LongEvery}th a {options.LongWords}-word prompt" : "")}), " +
                  $"{string.Join("/", options.Clients)} closed-loop clients, max_tokens {options.MaxTokens}, greedy, streamed");
            Console.WriteLine();
            var outcomes = new List<Outcome>();
            foreach (var mode in options.Modes)
                foreach (var clients in options.Clients)
                    foreach (var batch in options.Batches)
                        foreach (var prefixCache in options.PrefixCaches)
                            foreach (var chunk in options.PrefillChunks)
                                outcomes.Add(Measure(mode, mode == "ar" ? ar : diffusion, clients, batch, prefixCache, chunk, string.Join(' ', system), prompts, options)
                                    .GetAwaiter().GetResult());
            Print(outcomes);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static (string Ar, string Diffusion, long Parameters) WriteCheckpoints(string root)
    {
        var tokenizer = BpeTrainer.Train(SyntheticCorpus.Stories(3000, seed: 1), 1020, Path.Combine(root, "tokenizer"));
        var config = ModelConfigReader.Read(Config10M().ToJsonString());
        long parameters;
        using (var model = ModelFactory.Create(config, Placement.Cpu32))
        {
            ModelInit.Randomize(model, seed: 1);
            parameters = model.parameters().Sum(p => p.numel());
            ModelSaver.Save(model, tokenizer, Path.Combine(root, "bench-ar"));
        }
        using (var model = ModelFactory.Create(config with { Diffusion = new DiffusionSettings(32) }, Placement.Cpu32))
        using (var loaded = new LoadedModel(model, tokenizer))
        {
            ModelInit.Randomize(model, seed: 1);
            loaded.EnsureMaskToken();
            loaded.Save(Path.Combine(root, "bench-dllm"));
        }
        return (Path.Combine(root, "bench-ar"), Path.Combine(root, "bench-dllm"), parameters);
    }

    private static async Task<Outcome> Measure(string mode, string folder, int clients, int maxBatch, long prefixCache, int prefillChunk, string system,
        string[] prompts, Options options)
    {
        using var model = LoadedModel.Load(folder);
        await using var server = await DllmServer.StartAsync(model, new ServerOptions
        {
            Host = "127.0.0.1", Port = 0, MaxBatch = maxBatch, MaxQueue = options.Requests + 16, PrefixCacheTokens = prefixCache, PrefillChunk = prefillChunk,
        });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(30) };
        await Stream(http, "Once upon a time", options.MaxTokens);   // warm-up: first-call costs stay out of the figures (and share no prefix)
        var before = server.Scheduler.Stats;

        var latencies = new double[prompts.Length];
        var firstToken = new double[prompts.Length];
        var gaps = new double[prompts.Length];
        long tokens = 0, forwards = 0, decoded = 0;
        var next = -1;
        var clock = Stopwatch.StartNew();
        // A client takes the next request; in a chat workload request i is turn i % T of conversation i / T, and a
        // client keeps its conversation's history between the turns it takes.
        var turns = Math.Max(1, options.ChatTurns);
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            var history = "";
            for (var i = Interlocked.Add(ref next, turns) - turns + 1; i < prompts.Length; i = Interlocked.Add(ref next, turns) - turns + 1)
                for (var turn = 0; turn < turns && i + turn < prompts.Length; turn++)
                {
                    if (turn == 0) history = system;
                    var prompt = options.ChatTurns > 0 ? $"{history}\nUser: {prompts[i + turn]}\nAssistant:" : prompts[i + turn];
                    var started = Stopwatch.GetTimestamp();
                    var (usage, first, text, gap) = await Stream(http, prompt, options.MaxTokens);
                    gaps[i + turn] = gap;
                    latencies[i + turn] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    firstToken[i + turn] = Stopwatch.GetElapsedTime(started, first).TotalMilliseconds;
                    Interlocked.Add(ref tokens, (long)usage["completion_tokens"]!);
                    Interlocked.Add(ref forwards, (long)usage["forwards"]!);
                    // Decoded tokens as eval and usage.tokens_per_forward count them: the stop token included.
                    Interlocked.Add(ref decoded, (long)Math.Round((double)usage["tokens_per_forward"]! * (long)usage["forwards"]!));
                    history = prompt + text;
                }
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        var after = server.Scheduler.Stats;
        // Sequences per decoding forward over this run alone: the counters since start, minus the warm-up's.
        var rows = after.MeanBatchSize * after.Forwards - before.MeanBatchSize * before.Forwards;
        var meanBatch = rows / Math.Max(1, after.Forwards - before.Forwards);
        var shortGaps = gaps.Where((_, i) => options.LongEvery == 0 || i % options.LongEvery != options.LongEvery - 1).ToArray();
        return new Outcome(mode, clients, maxBatch, prefixCache, prefillChunk, prompts.Length, seconds, tokens, decoded, forwards, latencies, firstToken, meanBatch,
            after.LargestBatch, after.PrefixReusedTokens - before.PrefixReusedTokens, after.PrefixLookedUpTokens - before.PrefixLookedUpTokens, shortGaps);
    }

    /// <summary>
    /// One streamed completion: its usage (the last chunk, asked for with include_usage), when the first text arrived,
    /// the text, and the longest wait between two chunks of text (ms).
    /// </summary>
    private static async Task<(JsonNode Usage, long FirstText, string Text, double LongestGapMs)> Stream(HttpClient http, string prompt, int maxTokens)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = JsonContent.Create(new JsonObject
            {
                ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true },
            }),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        long first = 0, last = 0;
        var longestGap = 0.0;
        JsonNode? usage = null;
        var text = new System.Text.StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var data = line["data: ".Length..];
            if (data == "[DONE]") break;
            var chunk = JsonNode.Parse(data)!;
            if (chunk["choices"] is JsonArray { Count: > 0 } choices && choices[0]!["text"]?.GetValue<string>() is { Length: > 0 } delta)
            {
                var now = Stopwatch.GetTimestamp();
                if (first == 0) first = now;
                else longestGap = Math.Max(longestGap, Stopwatch.GetElapsedTime(last, now).TotalMilliseconds);
                last = now;
                text.Append(delta);
            }
            if (chunk["usage"] is JsonObject u) usage = u;
        }
        if (usage is null) throw new InvalidOperationException("the stream ended without a usage chunk");
        return (usage, first == 0 ? Stopwatch.GetTimestamp() : first, text.ToString(), longestGap);
    }

    private static void Print(List<Outcome> outcomes)
    {
        Console.WriteLine("| decoding | clients | --max-batch | --prefix-cache-tokens | --prefill-chunk | requests/s | tokens/s | p50 / p95 / p99 latency | p50 / p95 time to first token | " +
                          "p50 / p99 longest stall | sequences per forward (largest) | tokens/forward | prompt tokens reused |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|");
        foreach (var o in outcomes)
        {
            var sorted = o.LatenciesMs.Order().ToArray();
            var first = o.FirstTokenMs.Order().ToArray();
            var stalls = o.ShortGapsMs.Order().ToArray();
            Console.WriteLine($"| {o.Mode} | {o.Clients} | {o.MaxBatch} | {o.PrefixCache} | {o.PrefillChunk} | {o.Requests / o.Seconds:F2} | {o.CompletionTokens / o.Seconds:F0} | " +
                              $"{Percentile(sorted, 50) / 1000:F2} / {Percentile(sorted, 95) / 1000:F2} / {Percentile(sorted, 99) / 1000:F2} s | " +
                              $"{Percentile(first, 50) / 1000:F2} / {Percentile(first, 95) / 1000:F2} s | {Percentile(stalls, 50):F0} / {Percentile(stalls, 99):F0} ms | {o.MeanBatch:F1} ({o.LargestBatch}) | {(double)o.DecodedTokens / o.Forwards:F2} | " +
                              $"{(o.LookedUpTokens == 0 ? "-" : $"{(double)o.ReusedTokens / o.LookedUpTokens:P0}")} |");
        }
        foreach (var group in outcomes.Where(o => o.PrefixCache == outcomes[0].PrefixCache && o.PrefillChunk == outcomes[0].PrefillChunk).GroupBy(o => (o.Mode, o.Clients)))
        {
            var one = group.FirstOrDefault(o => o.MaxBatch == 1);
            var many = group.Where(o => o.MaxBatch > 1).MaxBy(o => o.MaxBatch);
            if (one is not null && many is not null)
                Console.WriteLine($"\n{group.Key.Mode}, {group.Key.Clients} clients: --max-batch {many.MaxBatch} serves {one.Seconds / many.Seconds:F1}x the requests/s of --max-batch 1");
        }
    }

    // Nearest-rank percentile of an ascending array.
    private static double Percentile(double[] sorted, int p) => sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static Options Parse(string[] args)
    {
        int requests = 200, maxTokens = 32, threads = 0, chat = 0, longEvery = 0, longWords = 250;
        string? ar = null, dllm = null, tasks = null;
        long[] prefixCaches = [new ServerOptions().PrefixCacheTokens];
        int[] prefillChunks = [new ServerOptions().PrefillChunk];
        int[] clients = [16];
        string[] modes = ["ar", "diffusion"];
        int[] batches = [1, 16];
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--requests": requests = int.Parse(args[++i]); break;
                case "--concurrency" or "--clients": clients = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                case "--max-tokens": maxTokens = int.Parse(args[++i]); break;
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--modes": modes = args[++i].Split(','); break;
                case "--batches": batches = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                case "--chat": chat = int.Parse(args[++i]); break;
                case "--prefix-cache": prefixCaches = args[++i].Split(',').Select(long.Parse).ToArray(); break;
                case "--prefill-chunk": prefillChunks = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                case "--long-every": longEvery = int.Parse(args[++i]); break;
                case "--long-words": longWords = int.Parse(args[++i]); break;
                case "--ar": ar = args[++i]; break;
                case "--dllm": dllm = args[++i]; break;
                case "--tasks": tasks = args[++i]; break;
                case "--quick": requests = 32; clients = [8]; maxTokens = 16; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (modes.Any(m => m is not ("ar" or "diffusion"))) throw new ArgumentException("--modes takes ar, diffusion or both");
        if (clients.Any(c => c < 1)) throw new ArgumentException("--clients takes positive counts");
        if (chat < 0) throw new ArgumentException("--chat takes a number of turns (0 = single prompts)");
        if ((ar is null) != (dllm is null) || (ar is null) != (tasks is null)) throw new ArgumentException("--ar, --dllm and --tasks go together");
        return new Options(requests, clients, maxTokens, threads, modes, batches, chat, prefixCaches, longEvery, longWords, prefillChunks, ar, dllm, tasks);
    }
}
