using System.Text;
using System.Text.Json.Nodes;
using Dllm.Serving.Http;

namespace Dllm.Tests.Serving;

/// <summary>Limits a client can rely on that the other serving tests do not cover.</summary>
[Collection(ServingCollection.Name)]
public class LimitsTests(ServingFixture fixture)
{
    [Fact]
    public async Task ABodyOverTheLimitGets413WithAnOpenAiErrorAndTheServerGoesOn()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar, new ServerOptions { MaxRequestBodyBytes = 16 << 10 });
        var big = Wire.Chat(new string('a', 20 << 10), 2).ToJsonString();
        using var refused = await server.Http.PostAsync("/v1/chat/completions", new StringContent(big, Encoding.UTF8, "application/json"));
        Assert.Equal(413, (int)refused.StatusCode);
        var error = JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.Equal("request_too_large", (string?)error["code"]);

        // Just under the limit is read (and then refused for its length in tokens, not bytes).
        var (status, body) = await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat(new string('a', 15 << 10), 2));
        Assert.Equal(400, status);
        Assert.Equal("context_length_exceeded", (string?)body["error"]!["code"]);
        Assert.Equal(200, (await Wire.PostAsync(server.Http, "/v1/chat/completions", Wire.Chat("x", 2))).Status);
    }

    [Fact]
    public void AZeroBodyLimitIsRefused() =>
        Assert.Throws<DllmException>(() => new ServerOptions { MaxRequestBodyBytes = 0 }.Validate());

    [Fact]
    public void ANegativeBatchTokenBoundIsRefusedByName() =>
        Assert.Contains("--max-batch-tokens", Assert.Throws<DllmException>(() => new ServerOptions { MaxBatchTokens = -1 }.Validate()).Message);
}
