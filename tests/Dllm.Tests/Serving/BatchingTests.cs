using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Dllm.Generation;
using Dllm.Serving;
using Dllm.Serving.Http;
using Dllm.Serving.Scheduling;

namespace Dllm.Tests.Serving;

[Collection(ServingCollection.Name)]
public class BatchingTests(ServingFixture fixture)
{
    private static readonly (string Prompt, int MaxTokens)[] Requests =
        [("hello", 9), ("Tell me a story", 14), ("abc", 5), ("What is 2+2?", 12), ("x", 7), ("one two three", 10)];

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task ConcurrentGreedyRequestsShareABatchAndMatchEachAlone(DecodeMode mode)
    {
        using var gate = new ManualResetEventSlim(false);
        await using var server = await TestServer.StartAsync(fixture.Folder(mode), new ServerOptions { MaxBatch = 8 }, TestDecoders.Held(gate));
        var sizes = new ConcurrentBag<int>();
        server.Scheduler.BatchFinished += report => sizes.Add(report.Size);

        // The first batch holds the decode thread at the gate while the rest queue behind it. However many
        // the first batch took (the decode thread may wake late), the other requests then form one batch.
        var together = Requests.Select(r => Text(server, r.Prompt, r.MaxTokens)).ToArray();
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats is var s && s.Running + s.Queued == Requests.Length, "all six are held");
        gate.Set();
        var batched = await Task.WhenAll(together);
        var concurrent = server.Scheduler.Stats;

        var alone = new List<string>();
        foreach (var (prompt, maxTokens) in Requests) alone.Add(await Text(server, prompt, maxTokens));

        Assert.Equal(alone, batched);
        Assert.True(concurrent.LargestBatch >= Requests.Length / 2, $"largest batch {concurrent.LargestBatch}");
        Assert.True(concurrent.Batches <= 2, $"six held requests took {concurrent.Batches} batches");
        Assert.Equal(concurrent.LargestBatch, sizes.Max());
        Assert.Equal(concurrent.Batches + Requests.Length, server.Scheduler.Stats.Batches);   // alone: one batch each
        Assert.Equal(2 * Requests.Length, server.Scheduler.Stats.Completed);
    }

    [Fact]
    public async Task MaxBatchOneDecodesOneRequestAtATime()
    {
        using var gate = new ManualResetEventSlim(false);
        await using var server = await TestServer.StartAsync(fixture.Ar, new ServerOptions { MaxBatch = 1 }, TestDecoders.Held(gate));
        var all = Requests[..3].Select(r => Text(server, r.Prompt, r.MaxTokens)).ToArray();
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats is { Running: 1, Queued: 2 }, "two requests wait");
        gate.Set();
        await Task.WhenAll(all);
        Assert.Equal(1, server.Scheduler.Stats.LargestBatch);
        Assert.Equal(3, server.Scheduler.Stats.Batches);
    }

    private static async Task<string> Text(TestServer server, string prompt, int maxTokens)
    {
        var (status, body) = await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat(prompt, maxTokens));
        Assert.Equal(200, status);
        Assert.Equal(maxTokens, (int)body["usage"]!["completion_tokens"]! + (body["choices"]![0]!["finish_reason"]!.ToString() == "stop" ? maxTokens - (int)body["usage"]!["completion_tokens"]! : 0));
        return (string)body["choices"]![0]!["message"]!["content"]!;
    }
}

/// <summary>Batch composition and admission, without a server.</summary>
[Collection(ServingCollection.Name)]
public class SchedulerRuleTests(ServingFixture fixture)
{
    private static AdmittedRequest Queued(int promptTokens, int maxNew, int tolerated, DecodeMode mode = DecodeMode.Ar, int blockSize = 32) =>
        new(new GenerationRequest { Prompt = "p", Options = new DecodeOptions { MaxNewTokens = maxNew } }, promptTokens,
            new BatchKey(mode, mode == DecodeMode.Ar ? null : new BlockDecodeOptions(blockSize)), tolerated);

    [Fact]
    public void TheOldestRequestLeadsAndOnlyCompatibleOnesJoinUpToTheBatchSize()
    {
        AdmittedRequest[] queue =
        [
            Queued(10, 5, 100), Queued(10, 5, 100, DecodeMode.Diffusion), Queued(12, 5, 100),
            Queued(10, 5, 100, DecodeMode.Diffusion, 16), Queued(11, 5, 100), Queued(9, 5, 100),
        ];
        Assert.Equal([0, 2, 4], BatchComposer.Compose(queue, 3));
        Assert.Equal([0, 2, 4, 5], BatchComposer.Compose(queue, 8));
        Assert.Equal([0], BatchComposer.Compose(queue[1..], 8));   // block settings differ: 16 does not join 32
        Assert.Equal([0], BatchComposer.Compose(queue, 1));
        Assert.Empty(BatchComposer.Compose([], 4));
    }

    [Fact]
    public void ARequestIsNotBatchedWithAPromptThatWouldCutItsExplicitLimit()
    {
        // Context 128: the head asked for 100 new tokens after 20 prompt tokens, so it tolerates prompts up to 28.
        AdmittedRequest[] queue = [Queued(20, 100, 28), Queued(40, 10, 118), Queued(25, 10, 118), Queued(30, 5, 127)];
        Assert.Equal([0, 2], BatchComposer.Compose(queue, 8));
        // A newcomer's own tolerance counts too: the 25-token prompt may not join a batch holding a 40-token one if it only tolerates 30.
        AdmittedRequest[] second = [Queued(40, 10, 118), Queued(25, 98, 30), Queued(30, 5, 123)];
        Assert.Equal([0, 2], BatchComposer.Compose(second, 8));
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public void AdmissionCapsTheLimitAtTheContextAndRefusesPromptsThatFillIt(DecodeMode mode)
    {
        using var model = Dllm.Models.LoadedModel.Load(fixture.Folder(mode));
        var request = new CompletionSettings { BlockSize = 32 }.ToRequest(model, "hello", true, [], default);
        var prompt = model.Tokenizer.Encode("hello").Count;
        var admitted = AdmittedRequest.Admit(model, request);
        Assert.Equal(128 - prompt, admitted.MaxNewTokens);
        Assert.Equal(mode, admitted.Key.Mode);
        Assert.Equal(127, admitted.LongestBatchmatePrompt);   // "as many as fit" tolerates any batchmate

        var explicitLimit = AdmittedRequest.Admit(model, request with { Options = request.Options with { MaxNewTokens = 10 } });
        Assert.Equal(10, explicitLimit.MaxNewTokens);
        Assert.Equal(118, explicitLimit.LongestBatchmatePrompt);

        var error = Assert.Throws<RequestError>(() => AdmittedRequest.Admit(model, request with { Prompt = new string('a', 200) }));
        Assert.Equal("context_length_exceeded", error.Code);
    }
}
