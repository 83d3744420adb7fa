using System.Text.Json.Nodes;
using Dllm.Tokenization;
using static Dllm.Tests.Tokenization.TinyByteLevelTokenizer;

namespace Dllm.Tests.Tokenization;

public sealed class ByteLevelBpeTests
{
    [Theory]
    [InlineData("hello the", new[] { Hello, SpaceThe })]
    [InlineData("hello<|im_end|>", new[] { Hello, ImEnd })]
    [InlineData("<|im_start|>user\nhello<|im_end|>\n", new[] { ImStart, 'u', 's', 'e', 'r', '\n', Hello, ImEnd, '\n' })]
    [InlineData("héllo", new[] { 'h', EAcute, Ll, 'o' })]
    [InlineData("The 3 cats", new[] { 'T', He, ' ', '3', ' ', 'c', 'a', 't', 's' })]
    [InlineData("😀", new[] { 0xF0, 0x9F, 0x98, 0x80 })]
    [InlineData("", new int[0])]
    [InlineData("  hello", new[] { ' ', ' ', Hello })] // pre-tokens " " and " hello"; there is no Ġhello merge
    public void EncodesToKnownIds(string text, int[] expected)
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, Json(), TokenizerConfigJson());
        Assert.Equal(expected, tokenizer.Encode(text));
        Assert.Equal(expected, tokenizer.Encode(text, addSpecialTokens: false)); // the ByteLevel post-processor adds nothing
    }

    [Fact]
    public void Gpt2StyleByteLevelPreTokenizerAddsAPrefixSpacePerSegment()
    {
        JsonObject json = Json();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true };
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, json);
        Assert.Equal(new[] { ' ', Hello, SpaceThe }, tokenizer.Encode("hello the"));
        Assert.Equal(new[] { ImEnd, ' ', Hello }, tokenizer.Encode("<|im_end|>hello"));
        Assert.Equal(new int[0], tokenizer.Encode(""));
        Assert.Equal(" hello the", tokenizer.Decode(tokenizer.Encode("hello the")));
    }

    [Fact]
    public void Llama3StylePostProcessorSequenceAddsBos()
    {
        JsonObject json = Json();
        json["post_processor"] = JsonNode.Parse("""
            {"type":"Sequence","processors":[
              {"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
              {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|im_start|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
               "pair":[],"special_tokens":{"<|im_start|>":{"id":"<|im_start|>","ids":[264],"tokens":["<|im_start|>"]}}}]}
            """);
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, json);
        Assert.Equal(new[] { ImStart, Hello }, tokenizer.Encode("hello"));
        Assert.Equal(new[] { Hello }, tokenizer.Encode("hello", addSpecialTokens: false));
    }

    [Fact]
    public void PairAndStringMergesAreTheSame()
    {
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        TextTokenizer strings = Load(a, Json(pairMerges: false));
        TextTokenizer pairs = Load(b, Json(pairMerges: true));
        foreach (string text in new[] { "hello the héllo", "hellohello", " the the" })
            Assert.Equal(strings.Encode(text), pairs.Encode(text));
    }

    [Fact]
    public void IgnoreMergesTakesWholeVocabWords()
    {
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        Assert.Equal(new[] { 'x', 'y', 'z' }.Select(c => (int)c), Load(a, Json(ignoreMerges: false)).Encode("xyz"));
        Assert.Equal(new[] { Xyz }, Load(b, Json(ignoreMerges: true)).Encode("xyz"));
    }

    [Theory]
    [InlineData("héllo wörld")]
    [InlineData("emoji 😀👍🏽 and 中文")]
    [InlineData("line\r\n\ttabs  and   spaces ")]
    [InlineData("<|im_start|>assistant\nhé😀<|im_end|>")]
    public void DecodeInvertsEncode(string text)
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, Json(), TokenizerConfigJson());
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        Assert.Equal(text.Replace("<|im_start|>", "").Replace("<|im_end|>", ""), tokenizer.Decode(tokenizer.Encode(text), skipSpecialTokens: true));
    }

    [Fact]
    public void NfcNormalizerComposesBeforeEncoding()
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, Json());
        Assert.Equal(tokenizer.Encode("h\u00e9llo"), tokenizer.Encode("he\u0301llo"));
        Assert.Equal(new[] { 'h', EAcute, Ll, 'o' }, tokenizer.Encode("he\u0301llo"));
    }

    [Fact]
    public void ConfigGivesSpecialIdsAndStopTokens()
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, Json(), TokenizerConfigJson());
        Assert.Null(tokenizer.BosId);
        Assert.Equal(EndOfText, tokenizer.EosId);
        Assert.Equal(EndOfText, tokenizer.PadId);
        Assert.Null(tokenizer.MaskId);
        Assert.Equal(new[] { EndOfText, ImEnd }, tokenizer.EosIds); // <|im_end|> ends each chat-template turn
        Assert.StartsWith("{% for m in messages %}", tokenizer.ChatTemplate);
        Assert.Equal(267, tokenizer.VocabSize);
        Assert.Equal("Ġthe", tokenizer.IdToToken(SpaceThe));
        Assert.Equal(SpaceThe, tokenizer.TokenToId("Ġthe"));
        Assert.Equal(ImEnd, tokenizer.TokenToId("<|im_end|>"));
        Assert.True(tokenizer.IsSpecial(ImEnd));
        Assert.False(tokenizer.IsSpecial(Hello));
    }

    [Fact]
    public void ChatTemplateFileOverridesConfigAndIsSaved()
    {
        using var dir = new TempDirectory();
        const string template = "{{ messages[0].content }}<|im_end|>";
        File.WriteAllText(dir.File("chat_template.jinja"), template);
        TextTokenizer tokenizer = Load(dir, Json(), TokenizerConfigJson());
        Assert.Equal(template, tokenizer.ChatTemplate);
        using var copy = new TempDirectory();
        tokenizer.Save(copy.Path);
        Assert.Equal(template, File.ReadAllText(copy.File("chat_template.jinja")));
        Assert.Equal(template, TextTokenizer.Load(copy.Path).ChatTemplate);
    }

    [Fact]
    public void AddedSpecialTokenGetsNextIdAndIsMatchedInText()
    {
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, Json(), TokenizerConfigJson()).WithAddedSpecialToken("<|mask|>", out int mask);
        Assert.Equal(267, mask);
        Assert.Equal(mask, tokenizer.MaskId);
        Assert.Equal(new[] { Hello, mask, mask, SpaceThe }, tokenizer.Encode("hello<|mask|><|mask|> the"));
        Assert.Equal("hello the", tokenizer.Decode(tokenizer.Encode("hello<|mask|> the"), skipSpecialTokens: true));
    }

    [Fact]
    public void AddedTokenFlagsFollowHuggingFace()
    {
        JsonObject json = Json();
        JsonArray added = json["added_tokens"]!.AsArray();
        added.Add(new JsonObject { ["id"] = 300, ["content"] = "<r>", ["rstrip"] = true, ["normalized"] = false, ["special"] = true });
        added.Add(new JsonObject { ["id"] = 301, ["content"] = "<l>", ["lstrip"] = true, ["normalized"] = false, ["special"] = true });
        added.Add(new JsonObject { ["id"] = 302, ["content"] = "he", ["single_word"] = true, ["normalized"] = false, ["special"] = false });
        using var dir = new TempDirectory();
        TextTokenizer tokenizer = Load(dir, json);
        Assert.Equal(new[] { 300, Hello }, tokenizer.Encode("<r>   hello"));         // rstrip swallows the spaces
        Assert.Equal(new[] { Hello, 301 }, tokenizer.Encode("hello   <l>"));         // lstrip too
        Assert.Equal(new[] { 302, ' ', Hello }, tokenizer.Encode("he hello"));       // single_word: only the whole word
        Assert.Equal(new[] { 'a', 300, 300 }, tokenizer.Encode("a<r><r>"));          // longest-leftmost, repeated
    }

    [Fact]
    public void SplitKeepsAstralCharactersWhole()
    {
        // Oniguruma sees "😀" as one char, so [^\r\n\p{L}\p{N}]?\p{L}+ takes it with the letters after it.
        var split = new PreTokenRegex(QwenPattern, "test");
        Assert.Equal(new[] { (0, 5) }, split.Split("😀abc"));
        Assert.Equal(new[] { (0, 3), (3, 4), (7, 2) }, split.Split("abc 𝐀b😀")); // " 𝐀b": 𝐀 (U+1D400) is a letter
        Assert.Equal(new[] { (0, 1), (1, 2) }, split.Split("a\r\n"));
    }

    [Fact]
    public void RegexWithGapsKeepsTheGapsAsPieces()
    {
        // HF's Isolated split keeps unmatched text; a pattern that only matches digits must not drop letters.
        var split = new PreTokenRegex(@"\d+", "test");
        Assert.Equal(new[] { (0, 3), (3, 2), (5, 1) }, split.Split("abc12x"));
    }
}
