using Dllm.Chat;

namespace Dllm.Tests.Chat;

public class ChatTemplateTests
{
    [Fact]
    public void LingTemplateMatchesTheOfficialRendering()
    {
        var t = new LingTemplate();
        Assert.Equal("<role>SYSTEM</role>detailed thinking off<|role_end|><role>HUMAN</role>Hi<|role_end|><role>ASSISTANT</role>",
            t.Render([ChatMessage.User("Hi")]));
        Assert.Equal("<role>SYSTEM</role>S\ndetailed thinking off<|role_end|><role>HUMAN</role>Hi<|role_end|><role>ASSISTANT</role>Hello<|role_end|><role>HUMAN</role>Q2<|role_end|><role>ASSISTANT</role>",
            t.Render([ChatMessage.System("S"), ChatMessage.User("Hi"), ChatMessage.Assistant("Hello"), ChatMessage.User("Q2")]));
    }

    [Fact]
    public void ChatMlAndLlama3RenderTheirKnownStrings()
    {
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            new ChatMlTemplate().Render([ChatMessage.System("S"), ChatMessage.User("Hi")]));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            new Llama3Template().Render([ChatMessage.User("  Hi ")]));
        Assert.Equal("User: Hi\nAssistant:", new PlainTemplate().Render([ChatMessage.User("Hi")]));
    }

    [Theory]
    [InlineData("{% for m in messages %}<|im_start|>{{ m.role }}...", "chatml")]
    [InlineData("{{ bos_token }}<|start_header_id|>...", "llama3")]
    [InlineData("{% set thinking_option = 'off' %}{{ '<role>SYSTEM</role>' }}", "ling")]
    public void TemplatesAreRecognisedFromTokenizerConfig(string jinja, string expected) =>
        Assert.Equal(expected, ChatTemplate.Detect(jinja)!.Name);

    [Fact]
    public void BadConversationsAreClearErrors()
    {
        Assert.Throws<DllmException>(() => new ChatMlTemplate().Render([]));
        Assert.Contains("tool", Assert.Throws<DllmException>(() => new ChatMlTemplate().Render([new ChatMessage("tool", "x")])).Message);
        Assert.Null(ChatTemplate.Detect("{{ messages }}"));
    }
}
