using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;

namespace Dllm.Tests.Generation;

public class TextGenerationTests
{
    public TextGenerationTests() => TorchRuntime.EnsureLoaded();

    private static LoadedModel Stories(TempDirectory dir)
    {
        Dllm.Import.Llama2cImporter.Import(TestData.Shared("stories260K/stories260K.bin"), TestData.Shared("stories260K/tok512.bin"), dir.File("s"));
        return LoadedModel.Load(dir.File("s"));
    }

    [SharedDataFact("stories260K/stories260K.bin", "stories260K/tok512.bin")]
    public void StreamedDeltasConcatenateToTheFinalTextAndStopStringsCutIt()
    {
        using var dir = new TempDirectory();
        using var model = Stories(dir);
        var request = new GenerationRequest { Prompt = "Once upon a time", Options = new DecodeOptions { MaxNewTokens = 60 } };
        var full = TextGeneration.Generate(model, request);
        Assert.StartsWith(", there was a little girl named Lily.", full.Text);

        var stopped = new List<GenerationEvent>(TextGeneration.Stream(model, [request with { StopStrings = ["girl named"] }]));
        var result = stopped.Last().Result!;
        Assert.Equal(", there was a little ", result.Text);
        Assert.Equal(FinishReason.Stop, result.Finish);
        Assert.Equal(result.Text, string.Concat(stopped.Select(e => e.Delta)));
        Assert.DoesNotContain(stopped, e => e.Delta.Contains("girl"));   // the held-back prefix never leaked
        Assert.True(result.TokenIds.Length < full.TokenIds.Length);
    }

    [SharedDataFact("stories260K/stories260K.bin", "stories260K/tok512.bin")]
    public void BatchOfPromptsEqualsEachPromptAlone()
    {
        using var dir = new TempDirectory();
        using var model = Stories(dir);
        string[] prompts = ["Once upon a time", "The dog", "Lily and Tom went to the big park to"];
        var requests = prompts.Select(p => new GenerationRequest { Prompt = p, Options = new DecodeOptions { MaxNewTokens = 30 } }).ToList();
        var batch = TextGeneration.Generate(model, requests);
        for (var i = 0; i < prompts.Length; i++)
        {
            var alone = TextGeneration.Generate(model, requests[i]);
            Assert.Equal(alone.Text, batch[i].Text);
            Assert.Equal(alone.TokenIds, batch[i].TokenIds);
        }
    }

    [Fact]
    public void StopStringsHoldBackOnlyWhatCouldStillBecomeAStop()
    {
        var stops = new StopStrings(["</s>", "END"]);
        Assert.Equal(5, stops.SafePrefixLength("hello"));
        Assert.Equal(5, stops.SafePrefixLength("hello</"));
        Assert.Equal(6, stops.SafePrefixLength("hello EN"));
        Assert.Equal(3, stops.FindStop("abcEND</s>"));
        Assert.Equal(-1, stops.FindStop("abc"));
    }
}

public class RequestCancellationTests
{
    public RequestCancellationTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public void CancellingOneRequestLeavesItsBatchmatesUntouched(DecodeMode mode)
    {
        using var dir = new TempDirectory();
        using var model = LoadedModel.Load(TinyCheckpoints.Write("llada2", dir.File("m")));
        model.EnsureMaskToken();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var request = new GenerationRequest { Prompt = "hello", Mode = mode, Options = new DecodeOptions { MaxNewTokens = 12, StopTokenIds = [999] }, Block = new BlockDecodeOptions(4, 0.5, 4) };
        var alone = TextGeneration.Generate(model, request);
        var both = TextGeneration.Generate(model, [request with { Cancellation = cancelled.Token }, request]);
        Assert.Equal(FinishReason.Cancelled, both[0].Finish);
        Assert.True(both[0].TokenIds.Length < 12);
        Assert.Equal(alone.TokenIds, both[1].TokenIds);
        Assert.Equal(FinishReason.Length, both[1].Finish);
    }
}

public class StreamedTextTests
{
    public StreamedTextTests() => TorchRuntime.EnsureLoaded();

    /// <summary>
    /// Block decoding decides a block's positions in any order, so tokens past the limit or after a stop
    /// token can be decided before the sequence ends; the stream must never show text the result drops.
    /// </summary>
    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public void StreamedDeltasConcatenateToTheResultWhenTheLimitOrAStopTokenFallsMidBlock(DecodeMode mode)
    {
        using var dir = new TempDirectory();
        using var model = LoadedModel.Load(TinyCheckpoints.Write("llada2", dir.File("m")));
        model.EnsureMaskToken();
        var request = new GenerationRequest { Prompt = "hello", Mode = mode, Options = new DecodeOptions { MaxNewTokens = 13, StopTokenIds = [999] }, Block = new BlockDecodeOptions(8, 0.5, 8) };
        AssertStreamMatchesResult(model, request, out var free);
        Assert.Equal(FinishReason.Length, free.Finish);

        // A byte token (not special, so decoding would show it) that the model emits mid-block, used as the stop id.
        var at = Enumerable.Range(2, 9).First(i => Array.IndexOf(free.TokenIds, free.TokenIds[i]) == i && i % 8 != 7);
        var stopped = request with { Options = request.Options with { StopTokenIds = [free.TokenIds[at]] } };
        AssertStreamMatchesResult(model, stopped, out var result);
        Assert.Equal(FinishReason.Stop, result.Finish);
        Assert.Equal(free.TokenIds[..at], result.TokenIds);
    }

    private static void AssertStreamMatchesResult(LoadedModel model, GenerationRequest request, out GenerationResult result)
    {
        var events = TextGeneration.Stream(model, [request]).ToList();
        result = events[^1].Result!;
        Assert.Equal(result.Text, string.Concat(events.Select(e => e.Delta)));
    }
}

public class AsyncDecodeStreamTests
{
    public AsyncDecodeStreamTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task AsyncStreamYieldsTheSameEventsAsTheSynchronousOne(DecodeMode mode)
    {
        using var dir = new TempDirectory();
        using var model = LoadedModel.Load(TinyCheckpoints.Write("llada2", dir.File("m")));
        model.EnsureMaskToken();
        var requests = new[] { "hello", "a longer prompt here" }.Select(p => new GenerationRequest
        {
            Prompt = p, Mode = mode, Options = new DecodeOptions { MaxNewTokens = 10, StopTokenIds = [999] }, Block = new BlockDecodeOptions(4, 0.5, 4),
        }).ToList();
        var expected = TextGeneration.Stream(model, requests).ToList();
        var actual = new List<GenerationEvent>();
        await foreach (var e in TextGeneration.StreamAsync(model, requests)) actual.Add(e);
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Sequence, actual[i].Sequence);
            Assert.Equal(expected[i].Delta, actual[i].Delta);
            Assert.Equal(expected[i].Step.Forward, actual[i].Step.Forward);
            Assert.Equal(expected[i].Result?.TokenIds, actual[i].Result?.TokenIds);
        }
        Assert.Equal(2, actual.Count(e => e.Result is not null));
    }

    [Fact]
    public async Task StoppingEarlyStopsTheDecoderAndFailuresSurfaceAsThemselves()
    {
        var produced = 0;
        IEnumerable<int> Decode(CancellationToken token)
        {
            for (var i = 0; ; i++)
            {
                token.ThrowIfCancellationRequested();
                produced++;
                yield return i;
            }
        }
        await foreach (var i in AsyncDecodeStream.Run(Decode))
            if (i == 2) break;
        // The channel holds at most 4 items ahead of the reader, and the producer has been awaited.
        Assert.InRange(produced, 3, 3 + 5);
        var settled = produced;
        await Task.Delay(50);
        Assert.Equal(settled, produced);

        IEnumerable<int> Failing(CancellationToken _)
        {
            yield return 1;
            throw new DllmException("model exploded");
        }
        var error = await Assert.ThrowsAsync<DllmException>(async () => { await foreach (var _ in AsyncDecodeStream.Run(Failing)) { } });
        Assert.Equal("model exploded", error.Message);

        using var cancel = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var i in AsyncDecodeStream.Run(Decode, cancel.Token)) if (i == 1) cancel.Cancel();
        });
    }
}
