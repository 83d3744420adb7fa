using System.ClientModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Dllm.Generation;
using Dllm.Serving.Http;
using Dllm.Serving.Scheduling;
using OpenAI;
using OpenAI.Chat;

namespace Dllm.Tests.Serving;

/// <summary>What happens under load and at the edges of a request's life: a full queue, a client that leaves, shutdown.</summary>
[Collection(ServingCollection.Name)]
public class BackpressureTests(ServingFixture fixture)
{
    [Fact]
    public async Task AFullQueueAnswers429WithAnOpenAiErrorAndServesTheOthers()
    {
        using var gate = new ManualResetEventSlim(false);
        await using var server = await TestServer.StartAsync(fixture.Ar, new ServerOptions { MaxQueue = 1 }, TestDecoders.Held(gate));
        var running = Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("hello", 3));
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Running == 1, "the first request runs");
        var waiting = Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("abc", 3));
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Queued == 1, "the second request waits");

        using var refused = await server.Http.PostAsync("/v1/chat/completions", new StringContent(Wire.Chat("x", 3).ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(429, (int)refused.StatusCode);
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        var error = JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("rate_limit_error", (string?)error["type"]);
        Assert.Equal("queue_full", (string?)error["code"]);

        gate.Set();
        Assert.Equal(200, (await running).Status);
        Assert.Equal(200, (await waiting).Status);
        Assert.Equal(1, server.Scheduler.Stats.Rejected);
        Assert.Equal(200, (await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("x", 3))).Status);
    }

    [Fact]
    public async Task AClientThatDisconnectsCancelsItsSequence()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar, wrap: TestDecoders.Slow(TimeSpan.FromMilliseconds(40)));
        var report = new TaskCompletionSource<BatchReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Scheduler.BatchFinished += r => report.TrySetResult(r);
        var client = new ChatClient("default", new ApiKeyCredential("k"), new OpenAIClientOptions { Endpoint = server.OpenAiEndpoint });

        // "hello" runs to its limit when nobody leaves (60 tokens: 2.4 s at this pace).
        var seen = 0;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("hello")], new ChatCompletionOptions { MaxOutputTokenCount = 60 }))
            if (update.ContentUpdate.Count > 0 && ++seen == 2) break;   // leaving the loop disposes the response: the connection closes

        var finished = await report.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(FinishReason.Cancelled, finished.Finishes[0]);
        Assert.True(finished.Forwards < 60, $"the batch ran {finished.Forwards} forwards: it should have ended early");
        Assert.Equal(1, server.Scheduler.Stats.Cancelled);
        Assert.Equal(200, (await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("x", 2))).Status);
    }

    [Fact]
    public async Task ARequestCancelledWhileQueuedNeverReachesTheModel()
    {
        using var gate = new ManualResetEventSlim(false);
        await using var server = await TestServer.StartAsync(fixture.Ar, wrap: TestDecoders.Held(gate));
        var sizes = new List<int>();
        server.Scheduler.BatchFinished += r => { lock (sizes) sizes.Add(r.Size); };
        var first = Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("hello", 2));
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Running == 1, "the first request runs");

        using var leave = new CancellationTokenSource();
        var queued = server.Http.PostAsync("/v1/chat/completions", new StringContent(Wire.Chat("abc", 2).ToJsonString(), Encoding.UTF8, "application/json"), leave.Token);
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Queued == 1, "the second request waits");
        leave.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Cancelled == 1, "the server notices");

        gate.Set();
        Assert.Equal(200, (await first).Status);
        // The response can reach the client before the scheduler reports the batch it finished.
        await Wire.WaitUntilAsync(() => { lock (sizes) return sizes.Count > 0; }, "the batch is reported");
        Assert.Equal(1, server.Scheduler.Stats.Batches);
        lock (sizes) Assert.Equal([1], sizes);
    }

    [Fact]
    public async Task StoppingDrainsInFlightRequestsThenRefusesConnections()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar, new ServerOptions { DrainTimeout = TimeSpan.FromSeconds(60) }, TestDecoders.Slow(TimeSpan.FromMilliseconds(30)));
        var inFlight = Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "hello", ["max_tokens"] = 20 });
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Running == 1, "the request runs");

        await server.Server.StopAsync();

        var (status, body) = await inFlight;
        Assert.Equal(200, status);
        Assert.Equal(20, (int)body["usage"]!["completion_tokens"]!);
        using var fresh = new HttpClient { BaseAddress = server.Server.BaseAddress };
        await Assert.ThrowsAsync<HttpRequestException>(() => fresh.GetAsync("/health"));
        Assert.Throws<SchedulerClosedException>(() => server.Scheduler.Submit(new GenerationRequest { Prompt = "x" }));
    }

    [Fact]
    public async Task TheDrainTimeoutCancelsWhatIsStillRunning()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar, new ServerOptions { DrainTimeout = TimeSpan.FromMilliseconds(300) }, TestDecoders.Slow(TimeSpan.FromMilliseconds(200)));
        var report = new TaskCompletionSource<BatchReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Scheduler.BatchFinished += r => report.TrySetResult(r);
        var inFlight = Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("hello", 60));   // 12 s at this pace
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Running == 1, "the request runs");

        var clock = Stopwatch.StartNew();
        await server.Server.StopAsync();
        // A hard stop lands between forwards, so allow for slow ones on a busy machine; a drain would take 12 s.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"stopping took {clock.Elapsed}");
        var finished = await report.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null(finished.Finishes[0]);   // cut off, no result
        Assert.True(finished.Forwards < 60);
        try
        {
            var (status, _) = await inFlight;
            Assert.Equal(503, status);
        }
        catch (HttpRequestException)
        {
            // Kestrel may abort the connection before the 503 goes out: either way the client is not left hanging.
        }
    }
}
