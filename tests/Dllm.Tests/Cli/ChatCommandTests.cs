using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;

namespace Dllm.Tests.Cli;

public class ChatCommandTests
{
    public ChatCommandTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void APipedChatStreamsRepliesThatMatchGenerateAndHonoursReset()
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write("llada2", dir.File("m"));
        using (var m = LoadedModel.Load(path)) { m.EnsureMaskToken(); m.Save(dir.File("dlm")); }
        var run = CliRunner.WithInput("hello\n/reset\nhello\n/exit\n", "chat", "--model", dir.File("dlm"), "-n", "8", "--block-size", "4");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("diffusion decoding, chatml template", run.Stdout);
        Assert.Contains("(conversation cleared)", run.Stdout);

        // The reply equals what the library gives for the same ChatML prompt.
        using var model = LoadedModel.Load(dir.File("dlm"));
        var expected = TextGeneration.Generate(model, new GenerationRequest
        {
            Prompt = "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
            AddSpecialTokens = false,
            Options = new DecodeOptions { MaxNewTokens = 8 },
            Block = new BlockDecodeOptions(4),
        }).Text;
        var replies = run.Stdout.Split("> ").Skip(1).Select(r => r.Split('\n')[0]).ToList();
        Assert.Equal(expected, replies[0]);
        Assert.Equal(replies[0], replies[2]);   // after /reset the same question gets the same greedy answer
        Assert.Equal(2, run.Stderr.Split('\n').Count(l => l.Contains("tokens/forward")));
    }

    /// <summary>
    /// The chat keeps a prefix cache across turns, so the second turn takes the first turn's prompt from it; its reply
    /// must still be what the library gives, with no cache, for the whole two-turn prompt.
    /// </summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("llada2")]
    public void ALaterTurnReusesTheHistoryAndAnswersAsAFreshPromptWould(string arch)
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write(arch, dir.File("m"));
        if (arch == "llada2")
        {
            using var m = LoadedModel.Load(path);
            m.EnsureMaskToken();
            m.Save(path = dir.File("dlm"));
        }
        var system = "Be brief.";   // the tiny models read bytes and hold 128 tokens
        var run = CliRunner.WithInput("hello there\nand now?\n/exit\n", "chat", "--model", path, "-n", "6", "--block-size", "4", "--system", system);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var replies = run.Stdout.Split("> ").Skip(1).Select(r => r.Split('\n')[0]).ToList();

        using var model = LoadedModel.Load(path);
        var chat = Dllm.Chat.ChatTemplate.For(model.Tokenizer);
        var history = new List<Dllm.Chat.ChatMessage> { Dllm.Chat.ChatMessage.System(system), Dllm.Chat.ChatMessage.User("hello there") };
        string Reply() => TextGeneration.Generate(model, new GenerationRequest
        {
            Prompt = chat.Render(history), AddSpecialTokens = chat.AddSpecialTokens, StopStrings = chat.StopStrings,
            Options = new DecodeOptions { MaxNewTokens = 6 }, Block = new BlockDecodeOptions(4),
        }).Text;
        var first = Reply();
        Assert.Equal(first, replies[0]);
        history.Add(Dllm.Chat.ChatMessage.Assistant(first.Trim()));
        history.Add(Dllm.Chat.ChatMessage.User("and now?"));
        Assert.True(model.Tokenizer.Encode(chat.Render(history), chat.AddSpecialTokens).Count >= 32, "the history spans whole chunks to reuse");
        Assert.Equal(Reply(), replies[1]);
    }

    [Fact]
    public void ATurnThatOverflowsTheContextIsReportedAndTheSessionGoesOn()
    {
        using var dir = new TempDirectory();
        var path = TinyCheckpoints.Write("qwen2", dir.File("m"));
        var tooLong = new string('a', 300);   // 300 byte tokens, the context is 128
        var run = CliRunner.WithInput($"{tooLong}\nhello\n/exit\n", "chat", "--model", path, "-n", "4");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var errors = run.Stderr.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
        Assert.Contains("context", Assert.Single(errors));
        Assert.Contains("/reset", errors[0]);
        // The next turn is answered, from a history without the refused message.
        Assert.Single(run.Stderr.Split('\n'), l => l.Contains("tokens/forward"));
        Assert.Equal(4, run.Stdout.Split("> ").Length);   // banner, two prompts answered or refused, the /exit prompt
    }
}
