using System.Text;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Serving;
using Dllm.Serving.AI;
using Dllm.Serving.Scheduling;
using Microsoft.Extensions.AI;

namespace Dllm.Tests.Serving;

/// <summary>The in-process IChatClient: same text as the server, options mapped, batches shared.</summary>
[Collection(ServingCollection.Name)]
public class ChatClientTests(ServingFixture fixture)
{
    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task ChatClientAnswersWhatTheServerAnswers(DecodeMode mode)
    {
        await using var server = await TestServer.StartAsync(fixture.Folder(mode));
        var (_, http) = await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("Tell me a story", 14));
        var serverText = (string)http["choices"]![0]!["message"]!["content"]!;

        using IChatClient client = server.Server.CreateChatClient();
        var options = new ChatOptions { MaxOutputTokens = 14, Temperature = 0 };
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story")], options);
        Assert.Equal(serverText, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal((long)http["usage"]!["prompt_tokens"]!, response.Usage!.InputTokenCount);
        Assert.Equal(14, response.Usage.OutputTokenCount);
        Assert.Equal((long)http["usage"]!["forwards"]!, response.Usage.AdditionalCounts!["forwards"]);
        Assert.Equal("tiny-" + (mode == DecodeMode.Ar ? "ar" : "dllm"), response.ModelId);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story")], options)) updates.Add(u);
        Assert.Equal(serverText, string.Concat(updates.Select(u => u.Text)));
        var merged = updates.ToChatResponse();
        Assert.Equal(serverText, merged.Text);
        Assert.Equal(ChatFinishReason.Length, merged.FinishReason);
        Assert.Equal(14, merged.Usage?.OutputTokenCount);
        Assert.Equal(2, server.Scheduler.Stats.Completed - 1);   // both in-process calls went through the server's scheduler
    }

    [Fact]
    public async Task ChatOptionsMapToDecodingSettings()
    {
        using var model = LoadedModel.Load(fixture.Diffusion);
        using var client = DllmChatClient.Create(model);
        List<ChatMessage> hello = [new(ChatRole.User, "hello")];

        var limited = await client.GetResponseAsync(hello, new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(5, limited.Usage!.OutputTokenCount);
        async Task<long> Forwards(double threshold) => (await client.GetResponseAsync(hello, new ChatOptions
        {
            MaxOutputTokens = 16,
            AdditionalProperties = new() { ["block_size"] = 8, ["threshold"] = threshold, ["max_steps_per_block"] = "8" },
        })).Usage!.AdditionalCounts!["forwards"];
        Assert.True(await Forwards(0.0) < await Forwards(1.0));

        var sampled = new ChatOptions { MaxOutputTokens = 8, Temperature = 1, TopP = 0.9f, TopK = 40, Seed = 3 };
        Assert.Equal((await client.GetResponseAsync(hello, sampled)).Text, (await client.GetResponseAsync(hello, sampled)).Text);

        var full = (await client.GetResponseAsync(hello, new ChatOptions { MaxOutputTokens = 20 })).Text;
        var stop = full.Skip(3).First(c => c != '\uFFFD').ToString();
        var stopped = await client.GetResponseAsync(hello, new ChatOptions { MaxOutputTokens = 20, StopSequences = [stop] });
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);

        var withInstructions = await client.GetResponseAsync(hello, new ChatOptions { MaxOutputTokens = 2, Instructions = "Be brief." });
        Assert.True(withInstructions.Usage!.InputTokenCount > limited.Usage.InputTokenCount);

        Assert.Equal("tools", (await Assert.ThrowsAsync<RequestError>(() => client.GetResponseAsync(hello,
            new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "f")] }))).Param);
        Assert.Equal("model", (await Assert.ThrowsAsync<RequestError>(() => client.GetResponseAsync(hello, new ChatOptions { ModelId = "gpt-4" }))).Param);
        Assert.Equal("threshold", (await Assert.ThrowsAsync<RequestError>(() => client.GetResponseAsync(hello,
            new ChatOptions { AdditionalProperties = new() { ["threshold"] = 2.0 } }))).Param);
        Assert.Equal("messages", (await Assert.ThrowsAsync<RequestError>(() => client.GetResponseAsync([], null))).Param);
        Assert.Equal("tiny-dllm", client.GetService<ChatClientMetadata>()?.DefaultModelId);
    }

    [Fact]
    public async Task ConcurrentInProcessCallersShareABatch()
    {
        using var model = LoadedModel.Load(fixture.Ar);
        using var gate = new ManualResetEventSlim(false);
        await using var scheduler = new GenerationScheduler(model, new SchedulerOptions(MaxBatch: 4), decoder: TestDecoders.Held(gate)(BatchDecoders.For(model)));
        using var client = new DllmChatClient(scheduler);
        string[] prompts = ["hello", "abc", "x", "hi there"];

        var together = prompts.Select(p => client.GetResponseAsync([new ChatMessage(ChatRole.User, p)], new ChatOptions { MaxOutputTokens = 6 })).ToArray();
        await Wire.WaitUntilAsync(() => scheduler.Stats is var s && s.Running + s.Queued == prompts.Length, "all four are held");
        gate.Set();
        var batched = (await Task.WhenAll(together)).Select(r => r.Text).ToList();
        var alone = new List<string>();
        foreach (var p in prompts) alone.Add((await client.GetResponseAsync([new ChatMessage(ChatRole.User, p)], new ChatOptions { MaxOutputTokens = 6 })).Text);

        Assert.Equal(alone, batched);
        Assert.True(scheduler.Stats.LargestBatch >= 2, $"largest batch {scheduler.Stats.LargestBatch}");
    }

    [Fact]
    public async Task CancellingAStreamingCallTakesItsSequenceOutOfTheBatch()
    {
        using var model = LoadedModel.Load(fixture.Ar);
        await using var scheduler = new GenerationScheduler(model, decoder: TestDecoders.Slow(TimeSpan.FromMilliseconds(40))(BatchDecoders.For(model)));
        var report = new TaskCompletionSource<BatchReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        scheduler.BatchFinished += r => report.TrySetResult(r);
        using var client = new DllmChatClient(scheduler);
        using var cancel = new CancellationTokenSource();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hello")], new ChatOptions { MaxOutputTokens = 60 }, cancel.Token))
                if (u.Text.Length > 0) cancel.Cancel();
        });
        var finished = await report.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(FinishReason.Cancelled, finished.Finishes[0]);
        Assert.True(finished.Forwards < 60);
    }
}
