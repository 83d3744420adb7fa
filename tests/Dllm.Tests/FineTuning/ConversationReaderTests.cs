using Dllm.FineTuning;

namespace Dllm.Tests.FineTuning;

public class ConversationReaderTests
{
    [Fact]
    public void ReadsChatPromptAnswerAndGsm8kRecords()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("a.jsonl"),
            """{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}""" + "\n\n" +
            """{"prompt": "Compute: 1 + 2 =", "answer": " 3"}""" + "\n" +
            """{"question": "How many?", "answer": "2 + 2 = 4\n#### 4"}""" + "\n");
        var records = ConversationReader.ReadSft(dir.File("a.jsonl"));
        Assert.Equal(3, records.Count);
        Assert.Equal(["system", "user"], records[0].Context.Select(m => m.Role));
        Assert.Equal("Hello", records[0].Response);
        Assert.True(records[1].RawPrompt);
        Assert.Equal(" 3", records[1].Response);
        Assert.Equal("Question: How many?\nAnswer:", records[2].Context[0].Content);
    }

    [Fact]
    public void MalformedRecordsNameTheLine()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("b.jsonl"), """{"prompt": "x", "answer": "y"}""" + "\n" + """{"messages": [{"role": "user", "content": "only a question"}]}""" + "\n");
        Assert.Contains("line 2", Assert.Throws<DllmException>(() => ConversationReader.ReadSft(dir.File("b.jsonl"))).Message);
        File.WriteAllText(dir.File("c.jsonl"), "{not json\n");
        Assert.Contains("line 1", Assert.Throws<DllmException>(() => ConversationReader.ReadSft(dir.File("c.jsonl"))).Message);
    }

    [Fact]
    public void ReadsEveryPreferenceLayout()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("p.jsonl"),
            """{"prompt": "Q", "chosen": "good", "rejected": "bad"}""" + "\n" +
            """{"prompt": [{"role": "user", "content": "Q2"}], "chosen": [{"role": "assistant", "content": "g2"}], "rejected": {"role": "assistant", "content": "b2"}}""" + "\n");
        var pairs = ConversationReader.ReadPreferences(dir.File("p.jsonl"));
        Assert.Equal(("good", "bad"), (pairs[0].Chosen, pairs[0].Rejected));
        Assert.Equal(("g2", "b2"), (pairs[1].Chosen, pairs[1].Rejected));
        Assert.False(pairs[1].RawPrompt);
    }

    [SharedDataFact("chat/dpo_en_demo.json", "chat/v1_dpo_demo.jsonl", "gsm8k/train_500.jsonl")]
    public void ReadsTheSharedLlamaFactoryPreferenceFiles()
    {
        var sharegpt = ConversationReader.ReadPreferences(TestData.Shared("chat/dpo_en_demo.json"));
        Assert.Equal(300, sharegpt.Count);
        Assert.All(sharegpt, p => Assert.Equal("user", p.Context[^1].Role));
        var v1 = ConversationReader.ReadPreferences(TestData.Shared("chat/v1_dpo_demo.jsonl"));
        Assert.Equal(10, v1.Count);
        Assert.All(v1, p => Assert.NotEqual(p.Chosen, p.Rejected));
        var gsm = ConversationReader.ReadSft(TestData.Shared("gsm8k/train_500.jsonl"));
        Assert.Equal(500, gsm.Count);
        Assert.EndsWith("#### 72", gsm[0].Response);
    }
}
