using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Demo;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using Dllm.Serving.Http;
using Dllm.Tokenization;
using Dllm.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Dllm.Bench;

/// <summary>
/// Long-run memory: a real conversion (data cache, validation, atomic checkpoints, pruning) for N training steps,
/// then N decode requests through the HTTP server, with the process's resident memory (RSS), the managed heap and
/// the live tensors of the working thread (the trainer's, then the decode thread's, less those the server's prefix
/// store keeps on purpose) sampled along the way. A leak
/// shows as a trend; flat means within noise after warm-up. Samples go to a CSV, the summary to stdout.
/// The serving phase is also a soak: one request in ten streams and hangs up after its first chunk, one in ten is
/// cancelled by its client after a few milliseconds; at the end no request may have failed on the server and the
/// scheduler must hold nothing.
/// </summary>
public static class MemoryBenchmark
{
    /// <summary>The block size every served request asks for (the prefix store's chunks follow it).</summary>
    private const int BlockSize = 8;

    private sealed record Sample(string Phase, long Index, double RssMb, double ManagedMb, long LiveTensors);

    private sealed record Options(long Steps, int Requests, int Every, int Concurrency, int MaxTokens, string Csv);

    public static void Run(string[] args)
    {
        var o = Parse(args);
        TorchRuntime.EnsureLoaded();
        var root = Path.Combine(Path.GetTempPath(), $"dllm-memory-{Guid.NewGuid():N}");
        var samples = new List<Sample>();
        try
        {
            var (ar, data) = Prepare(root);
            Console.WriteLine($"machine: {Timing.Machine()}");
            Console.WriteLine($"training: dllm convert of a 2-layer Llama (hidden 128) on synthetic stories, L 64, batch 4, {o.Steps} steps, checkpoint and validation every 500, keep-last 2");
            Train(ar, data, Path.Combine(root, "dlm"), o, samples);
            Console.WriteLine($"serving: {o.Requests} /v1/completions requests, {o.Concurrency} concurrent, max_tokens {o.MaxTokens}, diffusion decoding (block {BlockSize}); " +
                              "one in ten hangs up mid-stream, one in ten is cancelled by its client");
            Serve(Path.Combine(root, "dlm"), o, samples).GetAwaiter().GetResult();
        }
        finally
        {
            File.WriteAllLines(o.Csv, samples.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Phase},{s.Index},{s.RssMb:F1},{s.ManagedMb:F1},{s.LiveTensors}"))
                .Prepend("phase,index,rss_mb,managed_mb,live_tensors"));
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
        Console.WriteLine();
        Console.WriteLine($"samples: {o.Csv}");
        Console.WriteLine("| phase | samples | RSS MB after warm-up (first 10%) | RSS MB at the end (last 10%) | RSS max | live tensors first / last / max |");
        Console.WriteLine("|---|---:|---:|---:|---:|---|");
        foreach (var phase in samples.GroupBy(s => s.Phase))
        {
            var list = phase.ToList();
            var window = Math.Max(1, list.Count / 10);
            // The first sample is before warm-up (first checkpoint, first batch, JIT): the window starts after it.
            var early = list.Skip(Math.Min(1, list.Count - 1)).Take(window).ToList();
            var late = list.TakeLast(window).ToList();
            Console.WriteLine($"| {phase.Key} | {list.Count} | {Median(early.Select(s => s.RssMb)):F1} | {Median(late.Select(s => s.RssMb)):F1} | {list.Max(s => s.RssMb):F1} | " +
                              $"{early[0].LiveTensors} / {late[^1].LiveTensors} / {list.Max(s => s.LiveTensors)} |");
        }
    }

    private static Options Parse(string[] args)
    {
        long steps = 10_000;
        int requests = 10_000, every = 100, concurrency = 4, maxTokens = 16;
        var csv = "memory.csv";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps": steps = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--requests": requests = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--every": every = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--concurrency": concurrency = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--max-tokens": maxTokens = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--csv": csv = args[++i]; break;
                default: throw new ArgumentException($"unknown option {args[i]} (memory takes --steps, --requests, --every, --concurrency, --max-tokens, --csv)");
            }
        }
        return new Options(steps, requests, every, concurrency, maxTokens, csv);
    }

    private static (string Ar, string Data) Prepare(string root)
    {
        var stories = SyntheticCorpus.Stories(4000, seed: 3).ToList();
        var data = Path.Combine(root, "stories.txt");
        Directory.CreateDirectory(root);
        File.WriteAllLines(data, stories);
        var tokenizer = BpeTrainer.Train(stories, 512, Path.Combine(root, "tokenizer"));
        var config = ModelConfigReader.Read(new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["vocab_size"] = tokenizer.VocabSize, ["hidden_size"] = 128,
            ["intermediate_size"] = 352, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2,
            ["max_position_embeddings"] = 256, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = true,
        }.ToJsonString());
        var ar = Path.Combine(root, "ar");
        using var model = ModelFactory.Create(config, Placement.Cpu32);
        ModelInit.Randomize(model, seed: 1);
        ModelSaver.Save(model, tokenizer, ar);
        return (ar, data);
    }

    private static void Train(string ar, string data, string output, Options o, List<Sample> samples)
    {
        var observer = new Sampler(o.Every, samples);
        var result = ConversionJob.Run(new ConversionOptions
        {
            Model = ar,
            Data = [data],
            Output = output,
            SequenceLength = 64,
            BlockSize = 8,
            Trainer = new TrainerOptions
            {
                Steps = o.Steps, BatchSize = 4, PeakLearningRate = 1e-3, Seed = 1, EvalEvery = 500, CheckpointEvery = 500, KeepLast = 2,
                EmbeddingNoise = 0.1, EmbeddingNoiseSteps = o.Steps / 10,
            },
        }, observer);
        if (result.Outcome != TrainingOutcome.Completed) throw new InvalidOperationException($"training ended {result.Outcome}");
    }

    /// <summary>Samples on the trainer's thread, where its tensors live.</summary>
    private sealed class Sampler(int every, List<Sample> samples) : ITrainingObserver
    {
        public void Step(StepMetrics m)
        {
            if (m.Step % every == 0) samples.Add(Take("train", m.Step));
        }
    }

    private static async Task Serve(string folder, Options o, List<Sample> samples)
    {
        using var model = LoadedModel.Load(folder);
        await using var server = await DllmServer.StartAsync(model, new ServerOptions { Host = "127.0.0.1", Port = 0, MaxBatch = 8, MaxQueue = o.Concurrency * 4 },
            // The server's errors, with their stacks, on stderr: a soak that finds a failure should say where it came from.
            logging => logging.AddConsole(c => c.LogToStandardErrorThreshold = Microsoft.Extensions.Logging.LogLevel.Error)
                              .SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Error));
        // The decode thread's live tensors, read on that thread after each batch, less the prefix store's: it keeps
        // keys and values of earlier prompts on purpose (one key and one value tensor per layer per chunk) and fills up
        // to its capacity, so only what is beyond it can be a leak.
        long decodeLive = 0;
        var tensorsPerChunk = 2 * model.Model.Config.NumLayers;
        server.Scheduler.BatchFinished += _ =>
        {
            var stored = server.Scheduler.Stats.PrefixStoredTokens / PrefixCache.ChunkFor(BlockSize) * tensorsPerChunk;
            Interlocked.Exchange(ref decodeLive, DisposeScopeManager.Statistics.ThreadTotalLiveCount - stored);
        };
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };
        var prompts = SyntheticCorpus.Stories(256, seed: 9).Select(s => string.Join(' ', s.Split(' ').Take(12))).ToArray();
        var next = -1;
        var done = 0;
        long completed = 0, hungUp = 0, cancelled = 0, serverErrors = 0;
        var gate = new object();
        async Task Client()
        {
            while (true)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= o.Requests) return;
                var body = new JsonObject
                {
                    ["prompt"] = prompts[i % prompts.Length], ["max_tokens"] = o.MaxTokens, ["block_size"] = BlockSize, ["temperature"] = i % 2 == 0 ? 0 : 0.8, ["seed"] = i,
                };
                switch (i % 10)
                {
                    case 3:
                        // Streams, reads the first chunk, hangs up: the server must drop the sequence at its next step.
                        body["stream"] = true;
                        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = JsonContent.Create(body) })
                        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
                        {
                            if ((int)response.StatusCode >= 500) Interlocked.Increment(ref serverErrors);
                            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                            await reader.ReadLineAsync();
                        }
                        Interlocked.Increment(ref hungUp);
                        break;
                    case 7:
                        // Cancelled by the client after a few milliseconds: queued, prefilling or decoding, whichever it reached.
                        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(2 + i % 23)))
                        {
                            try
                            {
                                using var response = await http.PostAsJsonAsync("/v1/completions", body, cancel.Token);
                                if ((int)response.StatusCode >= 500) Interlocked.Increment(ref serverErrors);
                                Interlocked.Increment(ref completed);
                            }
                            catch (OperationCanceledException) { Interlocked.Increment(ref cancelled); }
                        }
                        break;
                    default:
                        using (var response = await http.PostAsJsonAsync("/v1/completions", body))
                        {
                            if ((int)response.StatusCode >= 500) Interlocked.Increment(ref serverErrors);
                            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"request {i}: HTTP {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                        }
                        Interlocked.Increment(ref completed);
                        break;
                }
                var count = Interlocked.Increment(ref done);
                if (count % o.Every == 0)
                    lock (gate) samples.Add(Take("serve", count) with { LiveTensors = Interlocked.Read(ref decodeLive) });
            }
        }
        await Task.WhenAll(Enumerable.Range(0, o.Concurrency).Select(_ => Task.Run(Client)));
        // Hung-up and cancelled requests leave at the scheduler's next step: give it a moment, then nothing may remain.
        var drained = Stopwatch.StartNew();
        while ((server.Scheduler.Stats.Running > 0 || server.Scheduler.Stats.Queued > 0) && drained.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        var stats = server.Scheduler.Stats;
        Console.WriteLine($"soak: {completed} answered, {hungUp} hung up mid-stream, {cancelled} cancelled before an answer; HTTP 5xx: {serverErrors}; " +
                          $"scheduler at the end: {stats.Running} running, {stats.Queued} queued; completed {stats.Completed}, cancelled {stats.Cancelled}, failed {stats.Failed}");
        if (serverErrors > 0 || stats.Failed > 0 || stats.Running > 0 || stats.Queued > 0)
            throw new InvalidOperationException("the soak failed: server errors, failed requests or sequences left in the scheduler (see the line above)");
    }

    private static Sample Take(string phase, long index)
    {
        using var process = Process.GetCurrentProcess();
        return new Sample(phase, index, process.WorkingSet64 / 1048576.0, GC.GetTotalMemory(false) / 1048576.0, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
