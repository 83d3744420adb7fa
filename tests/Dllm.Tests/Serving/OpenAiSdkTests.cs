using System.ClientModel;
using System.Text;
using System.Text.Json.Nodes;
using Dllm.Chat;
using Dllm.Generation;
using Dllm.Models;
using OpenAI;
using OpenAI.Chat;

namespace Dllm.Tests.Serving;

/// <summary>The official OpenAI .NET SDK and raw HTTP against a real server on loopback.</summary>
[Collection(ServingCollection.Name)]
public class OpenAiSdkTests(ServingFixture fixture)
{
    private static ChatClient Sdk(TestServer server, string model = "default") =>
        new(model, new ApiKeyCredential("any-key"), new OpenAIClientOptions { Endpoint = server.OpenAiEndpoint, NetworkTimeout = TimeSpan.FromSeconds(60) });

    private static GenerationResult Library(LoadedModel model, string user, int maxTokens)
    {
        var template = ChatTemplate.For(model.Tokenizer);
        return TextGeneration.Generate(model, new GenerationRequest
        {
            Prompt = template.Render([Dllm.Chat.ChatMessage.User(user)]),
            AddSpecialTokens = template.AddSpecialTokens,
            StopStrings = template.StopStrings,
            Options = new DecodeOptions { MaxNewTokens = maxTokens },
        });
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task SdkChatCompletionEqualsTheLibraryAndReportsUsage(DecodeMode mode)
    {
        await using var server = await TestServer.StartAsync(fixture.Folder(mode));
        var expected = Library(server.Model, "hello", 12);

        ChatCompletion completion = await Sdk(server, server.Server.Served.Id).CompleteChatAsync(
            [new UserChatMessage("hello")], new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 });

        Assert.Equal(expected.Text, completion.Content[0].Text);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(expected.PromptTokens, completion.Usage.InputTokenCount);
        Assert.Equal(12, completion.Usage.OutputTokenCount);
        Assert.Equal(expected.PromptTokens + 12, completion.Usage.TotalTokenCount);
        Assert.Equal(server.Server.Served.Id, completion.Model);
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task SdkStreamDeltasConcatenateToTheNonStreamingText(DecodeMode mode)
    {
        await using var server = await TestServer.StartAsync(fixture.Folder(mode));
        var client = Sdk(server);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 16 };
        ChatCompletion whole = await client.CompleteChatAsync([new UserChatMessage("hi there")], options);

        var text = new StringBuilder();
        var chunks = 0;
        OpenAI.Chat.ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("hi there")], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            chunks++;
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.True(chunks > 3, $"expected the text in several chunks, got {chunks}");
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);   // the SDK asks for stream_options.include_usage
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task ChatStreamFollowsOpenAisChunkFormat()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        var body = Wire.Chat("hello", 6);
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        var events = await Wire.StreamAsync(server.Http, "/v1/chat/completions", body);

        Assert.All(events, e => Assert.Equal("chat.completion.chunk", (string?)e["object"]));
        Assert.Single(events.Select(e => (string?)e["id"]).Distinct());
        Assert.Equal("assistant", (string?)events[0]["choices"]![0]!["delta"]!["role"]);
        var finishes = events.Where(e => e["choices"]!.AsArray().Count > 0).Select(e => (string?)e["choices"]![0]!["finish_reason"]).ToList();
        Assert.All(finishes[..^1], f => Assert.Null(f));
        Assert.Equal("length", finishes[^1]);
        var usageChunk = events[^1];
        Assert.Empty(usageChunk["choices"]!.AsArray());
        Assert.Equal(6, (int)usageChunk["usage"]!["completion_tokens"]!);
        Assert.Equal(6, (int)usageChunk["usage"]!["forwards"]!);   // AR: one token per forward
        Assert.All(events[..^1], e => Assert.Null(e["usage"]));
    }

    [Theory]
    [InlineData(DecodeMode.Ar)]
    [InlineData(DecodeMode.Diffusion)]
    public async Task LegacyCompletionsStreamAndAnswerTheSameText(DecodeMode mode)
    {
        await using var server = await TestServer.StartAsync(fixture.Folder(mode));
        var expected = TextGeneration.Generate(server.Model, new GenerationRequest { Prompt = "one two three", Options = new DecodeOptions { MaxNewTokens = 10 } });
        var (status, whole) = await Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "one two three", ["max_tokens"] = 10 });

        Assert.Equal(200, status);
        Assert.Equal("text_completion", (string?)whole["object"]);
        Assert.Equal(expected.Text, (string?)whole["choices"]![0]!["text"]);
        Assert.Equal(expected.Finish == FinishReason.Length ? "length" : "stop", (string?)whole["choices"]![0]!["finish_reason"]);
        var usage = whole["usage"]!;
        Assert.Equal(expected.PromptTokens, (int)usage["prompt_tokens"]!);
        Assert.Equal(expected.TokenIds.Length, (int)usage["completion_tokens"]!);
        Assert.Equal(expected.PromptTokens + expected.TokenIds.Length, (int)usage["total_tokens"]!);
        Assert.Equal(expected.Forwards, (int)usage["forwards"]!);
        Assert.Equal(Math.Round(expected.TokensPerForward, 4), (double)usage["tokens_per_forward"]!, 4);

        var events = await Wire.StreamAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = new JsonArray("one two three"), ["max_tokens"] = 10 });
        Assert.All(events, e => Assert.Equal("text_completion", (string?)e["object"]));
        Assert.Equal(expected.Text, string.Concat(events.Select(e => (string?)e["choices"]![0]!["text"])));
        Assert.NotNull((string?)events[^1]["choices"]![0]!["finish_reason"]);
    }

    [Fact]
    public async Task LegacyCompletionsDefaultToSixteenTokensAndHugeLimitsAreCappedAtTheContext()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        var (_, byDefault) = await Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "hello" });
        Assert.Equal(16, (int)byDefault["usage"]!["completion_tokens"]!);

        var (status, huge) = await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("one two three").Also(b => b["max_tokens"] = 1_000_000_000_000));
        Assert.Equal(200, status);
        var room = server.Model.Model.Config.MaxPositionEmbeddings - (int)huge["usage"]!["prompt_tokens"]!;
        var expected = Library(server.Model, "one two three", room);
        Assert.Equal(expected.TokenIds.Length, (int)huge["usage"]!["completion_tokens"]!);
        Assert.Equal(expected.Text, (string?)huge["choices"]![0]!["message"]!["content"]);
        Assert.True(expected.TokenIds.Length <= room);
    }

    [Fact]
    public async Task ModelsAndHealthDescribeTheServedModel()
    {
        await using var server = await TestServer.StartAsync(fixture.Diffusion);
        var id = server.Server.Served.Id;
        Assert.Equal("tiny-dllm", id);   // the folder name
        var models = await Wire.GetJsonAsync(server.Http, "/v1/models");
        Assert.Equal("list", (string?)models["object"]);
        Assert.Equal(id, (string?)models["data"]![0]!["id"]);
        Assert.Equal("diffusion", (string?)models["data"]![0]!["decoding"]);
        Assert.Equal(id, (string?)(await Wire.GetJsonAsync(server.Http, "/v1/models/default"))["id"]);
        var health = await Wire.GetJsonAsync(server.Http, "/health");
        Assert.Equal("ok", (string?)health["status"]);
        Assert.Equal(0, (int)health["queued"]!);
    }

    [Fact]
    public async Task DiffusionFieldsSteerDecodingAndAreIgnoredByArModels()
    {
        await using var server = await TestServer.StartAsync(fixture.Diffusion);
        async Task<JsonNode> Run(double threshold)
        {
            var body = Wire.Chat("hello", 16);
            body["block_size"] = 8;
            body["threshold"] = threshold;
            body["max_steps_per_block"] = 8;
            var (status, answer) = await Wire.PostAsync(server.Http, "/v1/chat/completions", body);
            Assert.Equal(200, status);
            return answer["usage"]!;
        }
        var exact = await Run(1.0);     // one token per step
        var eager = await Run(0.0);     // every masked position at once
        Assert.Equal(16, (int)exact["completion_tokens"]!);
        Assert.True((int)eager["forwards"]! < (int)exact["forwards"]!, $"threshold 0 took {eager["forwards"]} forwards, threshold 1 took {exact["forwards"]}");
        Assert.True((double)eager["tokens_per_forward"]! > 1.5);

        await using var ar = await TestServer.StartAsync(fixture.Ar);
        var arBody = Wire.Chat("hello", 8);
        arBody["threshold"] = 0.0;
        var (_, arAnswer) = await Wire.PostAsync(ar.Http, "/v1/chat/completions", arBody);
        Assert.Equal(1.0, (double)arAnswer["usage"]!["tokens_per_forward"]!);
    }

    [Fact]
    public async Task SeedsReproduceSamplingAndStopStringsCutTheText()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        async Task<string> Sample(long seed)
        {
            var body = Wire.Chat("hello", 12);
            body["temperature"] = 1.0;
            body["top_p"] = 0.9;
            body["top_k"] = 50;
            body["seed"] = seed;
            var (status, answer) = await Wire.PostAsync(server.Http, "/v1/chat/completions", body);
            Assert.Equal(200, status);
            return (string)answer["choices"]![0]!["message"]!["content"]!;
        }
        Assert.Equal(await Sample(7), await Sample(7));
        Assert.NotEqual(await Sample(7), await Sample(8));

        var (_, greedy) = await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("hello", 30));
        var text = (string)greedy["choices"]![0]!["message"]!["content"]!;
        var stop = text.Skip(3).First(c => c != '\uFFFD').ToString();
        var (_, stopped) = await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("hello", 30).Also(b => b["stop"] = new JsonArray(stop, "never-appears")));
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], (string?)stopped["choices"]![0]!["message"]!["content"]);
        Assert.Equal("stop", (string?)stopped["choices"]![0]!["finish_reason"]);
    }
}

internal static class JsonObjectExtensions
{
    public static JsonObject Also(this JsonObject o, Action<JsonObject> change)
    {
        change(o);
        return o;
    }
}
