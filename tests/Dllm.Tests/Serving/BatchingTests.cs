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
        Assert.True(sizes.Max() >= concurrent.LargestBatch, $"a batch of {sizes.Max()} had a forward of {concurrent.LargestBatch}");
        Assert.Equal(concurrent.Batches + Requests.Length, server.Scheduler.Stats.Batches);   // alone: one batch each
        Assert.Equal(2 * Requests.Length, server.Scheduler.Stats.Completed);
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task ARequestThatArrivesMidwayJoinsTheRunningBatchAndLeavesWhenDone(DecodeMode mode)
    {
        await using var server = await TestServer.StartAsync(fixture.Folder(mode), new ServerOptions { MaxBatch = 8 }, TestDecoders.Slow(TimeSpan.FromMilliseconds(25)));
        var alone = await Complete(server, "abc", 5);
        var before = server.Scheduler.Stats;

        // Block 8: the long request spans many blocks, so the short one joins at a block boundary well before its end.
        var longOne = Complete(server, "one two three", 80);
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Forwards >= before.Forwards + 3, "the long request is decoding");
        var shortOne = await Complete(server, "abc", 5);
        Assert.False(longOne.IsCompleted, "the short request waited for the long one: batching is not continuous");
        Assert.Equal(alone, shortOne);
        await longOne;

        var after = server.Scheduler.Stats;
        Assert.Equal(before.Batches + 1, after.Batches);   // one running batch served both
        Assert.Equal(2, after.LargestBatch);
        Assert.InRange(after.MeanBatchSize, 1.0001, 2);
        var health = await Wire.GetJsonAsync(server.Http, "/health");
        Assert.Equal(after.Forwards, (long)health["forwards"]!);
        Assert.InRange((double)health["mean_batch_size"]!, 1.0001, 2);
        Assert.InRange((double)health["mean_batch_size_last_minute"]!, 1.0001, 2);
        // The batch's cache held the two rows' keys, and gave them back once both left.
        Assert.True((long)health["largest_kv_cache_bytes"]! > 0);
        Assert.Equal(0, (long)health["kv_cache_bytes"]!);
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task RequestsSharingASystemPromptPrefillItOnceAndAnswerAsWithoutTheCache(DecodeMode mode)
    {
        string[] questions = ["hello", "Tell me a story", "What is 2+2?"];
        async Task<(List<string> Texts, JsonNode Health)> Ask(long prefixTokens)
        {
            await using var server = await TestServer.StartAsync(fixture.Folder(mode), new ServerOptions { PrefixCacheTokens = prefixTokens });
            // A system prompt of about 48 tokens (three chunks of 16), well inside the test model's context.
            var system = "";
            for (var i = 0; server.Model.Tokenizer.Encode(system, addSpecialTokens: true).Count < 48; i++) system += $"rule {i}. ";
            var texts = new List<string>();
            foreach (var q in questions) texts.Add(await Complete(server, $"{system} {q}", 6));
            return (texts, await Wire.GetJsonAsync(server.Http, "/health"));
        }

        var (cached, health) = await Ask(4096);
        var (plain, off) = await Ask(0);
        Assert.Equal(plain, cached);
        var prefix = health["prefix_cache"]!;
        Assert.Equal(4096, (long)prefix["capacity_tokens"]!);
        // The first request stores the system prompt's whole chunks; the two after it take them (at least 16 tokens each).
        Assert.InRange((long)prefix["reused_tokens"]!, 32, (long)prefix["looked_up_tokens"]!);
        Assert.True((long)prefix["stored_tokens"]! >= 16);
        Assert.Equal(0, (long)off["prefix_cache"]!["reused_tokens"]!);
        Assert.Equal(0, (long)off["prefix_cache"]!["stored_tokens"]!);
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task ATokenBoundKeepsTheBatchWithinItAndEveryRequestAnswersAsAlone(DecodeMode mode)
    {
        // Each request reserves its prompt (at most 6 tokens) plus 24: two fit in 60, three never do.
        using var gate = new ManualResetEventSlim(false);
        await using var server = await TestServer.StartAsync(fixture.Folder(mode), new ServerOptions { MaxBatch = 8, MaxBatchTokens = 60 }, TestDecoders.Held(gate));
        async Task<string> Ask()
        {
            var (status, body) = await Wire.PostAsync(server.Http, "/v1/completions",
                new JsonObject { ["prompt"] = "abc", ["max_tokens"] = 24, ["block_size"] = 8 });
            Assert.Equal(200, status);
            Assert.InRange((int)body["usage"]!["prompt_tokens"]!, 1, 6);
            return (string)body["choices"]![0]!["text"]!;
        }
        var together = Enumerable.Range(0, 5).Select(_ => Ask()).ToArray();
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats is var s && s.Running + s.Queued == 5, "all five are held");
        gate.Set();
        var texts = await Task.WhenAll(together);
        var alone = await Ask();

        Assert.All(texts, t => Assert.Equal(alone, t));
        Assert.Equal(2, server.Scheduler.Stats.LargestBatch);
        Assert.Equal(60, (long)(await Wire.GetJsonAsync(server.Http, "/health"))["max_batch_tokens"]!);
    }

    private static async Task<string> Complete(TestServer server, string prompt, int maxTokens)
    {
        var (status, body) = await Wire.PostAsync(server.Http, "/v1/completions",
            new JsonObject { ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["block_size"] = 8 });
        Assert.Equal(200, status);
        Assert.Equal(maxTokens, (int)body["usage"]!["completion_tokens"]!);
        return (string)body["choices"]![0]!["text"]!;
    }

    [Fact]
    public void TheBatchSizeMeterAveragesOverAllForwardsAndTheLastMinute()
    {
        var meter = new BatchSizeMeter();
        Assert.Equal(0, meter.Mean);
        meter.Record(1, nowSeconds: 1000);
        meter.Record(3, nowSeconds: 1010);
        meter.Record(5, nowSeconds: 1010);
        Assert.Equal(3, meter.Mean);
        Assert.Equal(3, meter.MeanLastMinute(1010));
        Assert.Equal(4, meter.MeanLastMinute(1065));   // the forward at 1000 is out of the window
        Assert.Equal(0, meter.MeanLastMinute(1100));
        meter.Record(2, nowSeconds: 1130);             // reuses the bucket of 1010 (same second mod 60)
        Assert.Equal(2, meter.MeanLastMinute(1130));
        Assert.Equal(11 / 4.0, meter.Mean);
        Assert.Equal(4, meter.Forwards);
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
    private static AdmittedRequest Queued(int promptTokens, DecodeMode mode = DecodeMode.Ar, int blockSize = 32) =>
        new(new GenerationRequest { Prompt = "p", Options = new DecodeOptions { MaxNewTokens = 5 } }, promptTokens,
            new BatchKey(mode, mode == DecodeMode.Ar ? null : new BlockDecodeOptions(blockSize)));

    private static readonly BatchKey Ar = new(DecodeMode.Ar, null);

    [Fact]
    public void RequestsOfTheRunningKindJoinOldestFirstUpToTheRoomLeft()
    {
        AdmittedRequest[] queue =
        [
            Queued(10), Queued(10, DecodeMode.Diffusion), Queued(12),
            Queued(10, DecodeMode.Diffusion, 16), Queued(11), Queued(90),
        ];
        Assert.Equal([0, 2], BatchComposer.Compose(queue, Ar, 2));
        Assert.Equal([0, 2, 4, 5], BatchComposer.Compose(queue, Ar, 8));   // prompt lengths do not matter: rows have their own room
        Assert.Empty(BatchComposer.Compose(queue, Ar, 0));
        Assert.Empty(BatchComposer.Compose([], Ar, 4));
        // Block settings are part of the kind: a batch decoding with block 32 does not take block 16.
        var diffusion32 = new BatchKey(DecodeMode.Diffusion, new BlockDecodeOptions(32));
        Assert.Equal([0], BatchComposer.Compose(queue[1..], diffusion32, 8));
    }

    [Fact]
    public void WithATokenBoundJoinsStopAtTheFirstRequestThatDoesNotFit()
    {
        // Each reserves its prompt plus its limit of 5.
        AdmittedRequest[] queue = [Queued(10), Queued(30, DecodeMode.Diffusion), Queued(20), Queued(3), Queued(1)];
        Assert.Equal([0, 2, 3, 4], BatchComposer.Compose(queue, Ar, 8, tokenRoom: 1000));
        Assert.Equal([0, 2], BatchComposer.Compose(queue, Ar, 8, tokenRoom: 40));   // 15 + 25 = 40 fits exactly
        // The 25-token request does not fit 30 - 15: the small ones behind it wait too, so it is not starved.
        Assert.Equal([0], BatchComposer.Compose(queue, Ar, 8, tokenRoom: 30));
        Assert.Empty(BatchComposer.Compose(queue, Ar, 8, tokenRoom: 14));
    }

    [Fact]
    public void ARequestOfAnotherKindAtTheHeadStopsJoinsSoItIsNotStarved()
    {
        AdmittedRequest[] queue = [Queued(10, DecodeMode.Diffusion), Queued(10), Queued(12)];
        Assert.Empty(BatchComposer.Compose(queue, Ar, 8));
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

        var explicitLimit = AdmittedRequest.Admit(model, request with { Options = request.Options with { MaxNewTokens = 10 } });
        Assert.Equal(10, explicitLimit.MaxNewTokens);

        var error = Assert.Throws<RequestError>(() => AdmittedRequest.Admit(model, request with { Prompt = new string('a', 200) }));
        Assert.Equal("context_length_exceeded", error.Code);

        // A token bound on the batch clamps the limit so the request fits alone, and refuses a prompt that fills it.
        var bounded = AdmittedRequest.Admit(model, request, maxBatchTokens: prompt + 7);
        Assert.Equal(7, bounded.MaxNewTokens);
        Assert.Equal(prompt + 7, bounded.ReservedTokens);
        var tooLong = Assert.Throws<RequestError>(() => AdmittedRequest.Admit(model, request, maxBatchTokens: prompt));
        Assert.Equal("context_length_exceeded", tooLong.Code);
        Assert.Contains("--max-batch-tokens", tooLong.Message);
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public void AnAdmittedPromptIsEncodedOnceAndDecodedFromThoseIds(DecodeMode mode)
    {
        using var model = Dllm.Models.LoadedModel.Load(fixture.Folder(mode));
        var request = new CompletionSettings { BlockSize = 32, MaxTokens = 6 }.ToRequest(model, "hello there", true, [], default);
        var admitted = AdmittedRequest.Admit(model, request);
        Assert.Equal(model.Tokenizer.Encode("hello there"), admitted.Request.PromptTokenIds);
        // The decoder reads the ids, not the text: a request whose text differs but whose ids are the admitted ones
        // decodes exactly as the admitted one does.
        var fromIds = TextGeneration.Generate(model, admitted.Request with { Prompt = "something else entirely" });
        var fromText = TextGeneration.Generate(model, admitted.Request with { PromptTokenIds = null });
        Assert.Equal(fromText.TokenIds, fromIds.TokenIds);
        Assert.Equal(fromText.PromptTokens, fromIds.PromptTokens);
        var other = TextGeneration.Generate(model, admitted.Request with { Prompt = "something else entirely", PromptTokenIds = null });
        Assert.NotEqual(fromText.PromptTokens, other.PromptTokens);
    }
}
