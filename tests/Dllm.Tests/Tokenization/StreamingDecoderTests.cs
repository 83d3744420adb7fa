using System.Text;
using Dllm.Tokenization;
using Xunit.Abstractions;

namespace Dllm.Tests.Tokenization;

public sealed class StreamingDecoderTests(ITestOutputHelper output)
{
    private static readonly string[] Texts =
    [
        "Lily saw a bird. “Hello!” she said.\nThe bird flew away.",
        "über naïve 中文 emoji 😀👍🏽 end", // ü, 中, 😀 are not in tok512: byte-fallback runs of 2..4 tokens
        "😀😀\n😀 x",
        " leading space and trailing ",
    ];

    [Fact]
    public void ByteFallbackStreamConcatenatesToDecode()
    {
        if (Llama2cAssets.Imported is not TextTokenizer tokenizer)
        {
            output.WriteLine(TestData.MissingMessage);
            return;
        }
        foreach (bool skip in new[] { true, false })
            foreach (string text in Texts.Concat(Llama2cAssets.Stories(20)))
                AssertStreamsLikeDecode(tokenizer, tokenizer.Encode(text), skip);

        // Incomplete characters are held back: after "▁a" (emitted as "a", the prefix space stripped) and
        // "▁", the four byte tokens of 😀 give "", "", "", "😀".
        var stream = new StreamingDecoder(tokenizer);
        IReadOnlyList<int> ids = tokenizer.Encode("a 😀");
        Assert.Equal(7, ids.Count); // BOS, "▁a", "▁", 4 bytes
        Assert.Equal(["", "a", " ", "", "", "", "😀"], ids.Select(stream.Push));
    }

    [Fact]
    public void ByteLevelStreamConcatenatesToDecode()
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = TinyByteLevelTokenizer.Load(dir, TinyByteLevelTokenizer.Json(), TinyByteLevelTokenizer.TokenizerConfigJson());
        foreach (bool skip in new[] { true, false })
            foreach (string text in Texts.Append("<|im_start|>user\nhé😀<|im_end|>"))
                AssertStreamsLikeDecode(tokenizer, tokenizer.Encode(text), skip);
    }

    [Fact]
    public void FlushReturnsAnUnfinishedCharacterAndResets()
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = TinyByteLevelTokenizer.Load(dir, TinyByteLevelTokenizer.Json());
        var stream = new StreamingDecoder(tokenizer);
        Assert.Equal("hello", stream.Push(TinyByteLevelTokenizer.Hello));
        Assert.Equal("", stream.Push(0xF0)); // first byte of a 4-byte character
        Assert.Equal("\uFFFD", stream.Flush());
        Assert.Equal("hello", stream.Push(TinyByteLevelTokenizer.Hello)); // starts afresh
    }

    private static void AssertStreamsLikeDecode(TextTokenizer tokenizer, IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        string expected = tokenizer.Decode(ids, skipSpecialTokens);
        var stream = new StreamingDecoder(tokenizer, skipSpecialTokens);
        var streamed = new StringBuilder();
        foreach (int id in ids)
        {
            string chunk = stream.Push(id);
            Assert.DoesNotContain('\uFFFD', chunk);
            // A chunk never ends inside a surrogate pair either.
            Assert.False(chunk.Length > 0 && char.IsHighSurrogate(chunk[^1]), $"chunk '{chunk}' splits a character");
            streamed.Append(chunk);
        }
        streamed.Append(stream.Flush());
        Assert.Equal(expected, streamed.ToString());
    }
}
