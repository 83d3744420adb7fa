using System.Text;
using System.Text.Json.Nodes;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Serving.Http;
using Dllm.Serving.Scheduling;

namespace Dllm.Tests.Serving;

/// <summary>One diffusion server shared by every bad-input case; a request that raises "boom" fails inside the decoder.</summary>
public sealed class BadRequestServer : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        TorchRuntime.EnsureLoaded();
        TinyCheckpoints.Write("llada2", _dir.File("raw"));
        using (var raw = LoadedModel.Load(_dir.File("raw")))
        {
            raw.EnsureMaskToken();
            raw.Save(_dir.File("tiny-dllm"));
        }
        Server = await TestServer.StartAsync(_dir.File("tiny-dllm"), wrap: inner => key => Explode(inner, key));
    }

    /// <summary>A batch holding a "boom" request fails at its next step.</summary>
    private static IGenerationSession Explode(BatchDecoder inner, BatchKey key)
    {
        var boom = false;
        return new HookedSession(inner(key), added: r => boom |= r.Prompt.Contains("boom", StringComparison.Ordinal),
            before: (_, _) => { if (boom) throw new InvalidOperationException("the decoder blew up"); });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        _dir.Dispose();
    }
}

public class BadRequestTests(BadRequestServer fixture) : IClassFixture<BadRequestServer>
{
    private const string Chat = "/v1/chat/completions";
    private const string Completions = "/v1/completions";
    private const string User = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
    private static readonly string Long = new('a', 300);

    public static TheoryData<string, string, int, string?, string?> Cases => new()
    {
        // path, body, status, param, code
        { Chat, """{"messages": [""", 400, null, "invalid_json" },
        { Chat, "", 400, null, "invalid_json" },
        { Chat, "[1, 2]", 400, null, "invalid_json" },
        { Chat, """{"model": "default"}""", 400, "messages", null },
        { Chat, """{"messages": []}""", 400, "messages", null },
        { Chat, """{"messages": "hi"}""", 400, "messages", null },
        { Chat, """{"messages": [1]}""", 400, "messages[0]", null },
        { Chat, """{"messages": [{"content": "hi"}]}""", 400, "messages[0].role", null },
        { Chat, """{"messages": [{"role": "tool", "content": "hi"}]}""", 400, "messages[0].role", null },
        { Chat, """{"messages": [{"role": "user", "content": 5}]}""", 400, "messages[0].content", null },
        { Chat, """{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}""", 400, "messages[0].content", null },
        { Chat, $$"""{{{User}}, "model": "gpt-4"}""", 404, "model", "model_not_found" },
        { Chat, $$"""{{{User}}, "model": 7}""", 400, "model", null },
        { Chat, $$"""{{{User}}, "temperature": "hot"}""", 400, "temperature", null },
        { Chat, $$"""{{{User}}, "temperature": 3}""", 400, "temperature", null },
        { Chat, $$"""{{{User}}, "temperature": -0.5}""", 400, "temperature", null },
        { Chat, $$"""{{{User}}, "top_p": 0}""", 400, "top_p", null },
        { Chat, $$"""{{{User}}, "top_k": -1}""", 400, "top_k", null },
        { Chat, $$"""{{{User}}, "max_tokens": -5}""", 400, "max_tokens", null },
        { Chat, $$"""{{{User}}, "max_tokens": 0}""", 400, "max_tokens", null },
        { Chat, $$"""{{{User}}, "max_tokens": 2.5}""", 400, "max_tokens", null },
        { Chat, $$"""{{{User}}, "max_tokens": -1e30}""", 400, "max_tokens", null },
        { Chat, $$"""{{{User}}, "max_completion_tokens": "many"}""", 400, "max_completion_tokens", null },
        { Chat, $$"""{{{User}}, "n": 2}""", 400, "n", null },
        { Chat, $$"""{{{User}}, "seed": "x"}""", 400, "seed", null },
        { Chat, $$"""{{{User}}, "stop": 5}""", 400, "stop", null },
        { Chat, $$"""{{{User}}, "stop": [""]}""", 400, "stop", null },
        { Chat, $$"""{{{User}}, "stream": "yes"}""", 400, "stream", null },
        { Chat, $$"""{{{User}}, "threshold": 1.5}""", 400, "threshold", null },
        { Chat, $$"""{{{User}}, "block_size": 0}""", 400, "block_size", null },
        { Chat, $$"""{{{User}}, "block_size": 1000}""", 400, "block_size", null },
        { Chat, $$"""{{{User}}, "max_steps_per_block": 0}""", 400, "max_steps_per_block", null },
        { Chat, $$"""{{{User}}, "editing_threshold": 1.5}""", 400, "editing_threshold", null },
        { Chat, $$"""{{{User}}, "editing_threshold": 0.5, "max_post_steps": -1}""", 400, "max_post_steps", null },
        { Chat, $$"""{{{User}}, "max_post_steps": 4}""", 400, "max_post_steps", null },
        { Chat, "{" + User + """, "tools": [{"type": "function", "function": {"name": "f"}}]}""", 400, "tools", null },
        { Chat, $$"""{{{User}}, "logprobs": true}""", 400, "logprobs", null },
        { Chat, "{" + User + """, "response_format": {"type": "json_object"}}""", 400, "response_format", null },
        { Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"" + Long + "\"}]}", 400, "messages", "context_length_exceeded" },
        { Completions, """{"max_tokens": 4}""", 400, "prompt", null },
        { Completions, """{"prompt": [1, 2, 3]}""", 400, "prompt", null },
        { Completions, """{"prompt": ["a", "b"]}""", 400, "prompt", null },
        { Completions, """{"prompt": 42}""", 400, "prompt", null },
        { Completions, """{"prompt": "hi", "echo": true}""", 400, "echo", null },
        { Completions, "{\"prompt\": \"" + Long + "\"}", 400, "prompt", "context_length_exceeded" },
        { "/v1/nope", "{}", 404, null, "not_found" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadInputGetsAnOpenAiErrorAndTheServerKeepsServing(string path, string body, int status, string? param, string? code)
    {
        var http = fixture.Server.Http;
        using var response = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var error = AssertError(status, await response.Content.ReadAsStringAsync(), (int)response.StatusCode);
        Assert.Equal(status >= 500 ? "server_error" : "invalid_request_error", (string?)error["type"]);
        Assert.Equal(param, (string?)error["param"]);
        Assert.Equal(code, (string?)error["code"]);
        await AssertStillServing(http);
    }

    [Fact]
    public async Task WrongMethodGets405InTheSameShape()
    {
        using var response = await fixture.Server.Http.DeleteAsync(Chat);
        var error = AssertError(405, await response.Content.ReadAsStringAsync(), (int)response.StatusCode);
        Assert.Equal("method_not_allowed", (string?)error["code"]);
    }

    [Fact]
    public async Task ADecoderFailureIsA500InTheSameShapeAndTheServerKeepsServing()
    {
        var (status, body) = await Wire.PostAsync(fixture.Server.Http, Chat, Wire.Chat("boom", 4));
        var error = AssertError(500, body.ToJsonString(), status);
        Assert.Equal("server_error", (string?)error["type"]);
        Assert.Contains("the decoder blew up", (string?)error["message"]);
        await AssertStillServing(fixture.Server.Http);
        Assert.True(fixture.Server.Scheduler.Stats.Failed >= 1);
    }

    private static JsonNode AssertError(int expected, string text, int status)
    {
        Assert.True(expected == status, $"expected {expected}, got {status}: {text}");
        var json = JsonNode.Parse(text)!;
        Assert.Single(json.AsObject());
        var error = json["error"]!.AsObject();
        Assert.Equal(["message", "type", "param", "code"], error.Select(p => p.Key));
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
        return error;
    }

    private static async Task AssertStillServing(HttpClient http)
    {
        Assert.Equal("ok", (string?)(await Wire.GetJsonAsync(http, "/health"))["status"]);
        var (status, answer) = await Wire.PostAsync(http, Chat, Wire.Chat("hello", 2));
        Assert.Equal(200, status);
        Assert.Equal(2, (int)answer["usage"]!["completion_tokens"]!);
    }
}
