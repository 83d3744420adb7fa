using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Serving.Http;
using static TorchSharp.torch;

namespace Dllm.Tests.Serving;

/// <summary>
/// The server's answers to the inputs that used to break it: a 503 (not a refused connection) while draining,
/// bad UTF-8 and duplicate keys as 400s, tiny temperatures decoded greedily, NaN logits as a clean 500, and
/// listen addresses that are refused rather than widened to every interface.
/// </summary>
[Collection(ServingCollection.Name)]
public class ServerReliabilityTests(ServingFixture fixture)
{
    private static async Task<(int Status, JsonNode Body)> PostBytesAsync(HttpClient http, string path, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        using var response = await http.PostAsync(path, content);
        return ((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    [Fact]
    public async Task WhileDrainingNewRequestsGet503AndTheRunningOneFinishes()
    {
        using var gate = new ManualResetEventSlim(false);
        await using var server = await TestServer.StartAsync(fixture.Ar, new ServerOptions { DrainTimeout = TimeSpan.FromSeconds(60) }, TestDecoders.Held(gate));
        var inFlight = Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "hello", ["max_tokens"] = 5 });
        await Wire.WaitUntilAsync(() => server.Scheduler.Stats.Running == 1, "the request runs");

        var stopping = server.Server.StopAsync();
        await Wire.WaitUntilAsync(() => server.Scheduler.IsClosing, "the drain starts");
        var (status, body) = await Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "late", ["max_tokens"] = 5 });
        Assert.Equal(503, status);
        Assert.Equal("shutting_down", (string?)body["error"]!["code"]);
        using (var health = await server.Http.GetAsync("/health"))
        {
            Assert.Equal(503, (int)health.StatusCode);
            Assert.Equal("draining", (string?)JsonNode.Parse(await health.Content.ReadAsStringAsync())!["status"]);
        }

        gate.Set();
        await stopping;
        var (done, answer) = await inFlight;
        Assert.Equal(200, done);
        Assert.Equal(5, (int)answer["usage"]!["completion_tokens"]!);
    }

    [Theory]
    [InlineData(new byte[] { 0xff, 0xfe })]          // not UTF-8 at all
    [InlineData(new byte[] { 0xc3 })]                // a sequence cut short
    [InlineData(new byte[] { 0xed, 0xa0, 0x80 })]    // an encoded surrogate
    public async Task InvalidUtf8InAStringIsA400(byte[] bad)
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        var body = Encoding.UTF8.GetBytes("{\"prompt\": \"hi ").Concat(bad).Concat(Encoding.UTF8.GetBytes("\", \"max_tokens\": 2}")).ToArray();
        var (status, json) = await PostBytesAsync(server.Http, "/v1/completions", body);
        Assert.Equal(400, status);
        Assert.Equal("invalid_json", (string?)json["error"]!["code"]);
        Assert.Contains("UTF-8", (string?)json["error"]!["message"]);
    }

    [Fact]
    public async Task ADuplicateKeyIsA400()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        var (status, json) = await Wire.PostAsync(server.Http, "/v1/completions", """{"prompt": "hi", "max_tokens": 2, "max_tokens": 3000}""");
        Assert.Equal(400, status);
        Assert.Contains("Duplicate property 'max_tokens'", (string?)json["error"]!["message"]);
    }

    [Fact]
    public async Task ATinyTemperatureDecodesGreedily()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        var greedy = await Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "hello", ["max_tokens"] = 6, ["temperature"] = 0 });
        var tiny = await Wire.PostAsync(server.Http, "/v1/completions", new JsonObject { ["prompt"] = "hello", ["max_tokens"] = 6, ["temperature"] = 1e-300 });
        Assert.Equal(200, tiny.Status);
        Assert.Equal((string?)greedy.Body["choices"]![0]!["text"], (string?)tiny.Body["choices"]![0]!["text"]);
    }

    [Fact]
    public async Task NonFiniteLogitsAreACleanServerError()
    {
        var model = LoadedModel.Load(fixture.Ar);
        using (no_grad()) model.Model.state_dict()["model.norm.weight"].fill_(float.NaN);
        await using (var server = await DllmServer.StartAsync(model, new ServerOptions { Host = "127.0.0.1", Port = 0 }))
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            var (status, json) = await Wire.PostAsync(http, "/v1/completions", new JsonObject { ["prompt"] = "hello", ["max_tokens"] = 4, ["temperature"] = 0.7 });
            Assert.Equal(500, status);
            Assert.Equal("non_finite_logits", (string?)json["error"]!["code"]);
            Assert.DoesNotContain('\n', (string)json["error"]!["message"]!);
        }
        model.Dispose();
    }

    [Theory]
    [InlineData("not-a-host", "is not an IP address")]
    [InlineData("8.8.8.8", "is not an address of this machine")]
    [InlineData("example.com", "is not an IP address")]
    [InlineData("12", "is not an IP address")]
    public void AHostThatIsNotALocalAddressIsRefused(string host, string message)
    {
        var e = Assert.Throws<DllmException>(() => new ServerOptions { Host = host }.Validate());
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public async Task TheServerReportsTheAddressItReallyListensOn()
    {
        await using var server = await TestServer.StartAsync(fixture.Ar);
        var listening = Assert.Single(server.Server.Listening);
        Assert.Equal($"http://127.0.0.1:{server.Server.BaseAddress.Port}", listening);
    }
}
