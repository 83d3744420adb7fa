using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Dllm.Tests.Serving;

/// <summary>Raw HTTP helpers: JSON posts and a strict reader of OpenAI's server-sent events.</summary>
public static class Wire
{
    public static async Task<(int Status, JsonNode Body)> PostAsync(HttpClient http, string path, string json)
    {
        using var response = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonNode.Parse(text)!);
    }

    public static Task<(int Status, JsonNode Body)> PostAsync(HttpClient http, string path, JsonObject body) => PostAsync(http, path, body.ToJsonString());

    public static async Task<JsonNode> GetJsonAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        Assert.Equal(200, (int)response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonNode>())!;
    }

    /// <summary>
    /// Posts with stream: true and returns the events' data in order, after checking the framing:
    /// every event is exactly one "data: ..." line followed by a blank line, and the last one is [DONE].
    /// </summary>
    public static async Task<List<JsonNode>> StreamAsync(HttpClient http, string path, JsonObject body)
    {
        body["stream"] = true;
        using var response = await http.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n\n", text);
        var events = text[..^2].Split("\n\n");
        foreach (var e in events)
        {
            Assert.StartsWith("data: ", e);
            Assert.DoesNotContain('\n', e);
        }
        Assert.Equal("data: [DONE]", events[^1]);
        return events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
    }

    public static JsonObject Chat(string content, int? maxTokens = null) => new()
    {
        ["model"] = "default",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
        ["max_tokens"] = maxTokens,
    };

    public static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(10);
        }
    }
}
