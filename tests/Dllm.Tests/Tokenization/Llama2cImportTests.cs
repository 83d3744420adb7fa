using Dllm.Tokenization;
using Microsoft.ML.Tokenizers;
using Xunit.Abstractions;

namespace Dllm.Tests.Tokenization;

public sealed class Llama2cImportTests(ITestOutputHelper output)
{
    private const int StoryCount = 200;

    [SharedDataFact("stories260K/tok512.bin", "tinystories/sample.txt")]
    public void ImportedTokenizerEncodesExactlyLikeLlama2c()
    {
        var reference = new Llama2cReferenceEncoder(Llama2cAssets.TokenizerBin!);
        TextTokenizer tokenizer = Llama2cAssets.Imported!;
        int tokens = 0;
        foreach (string text in Llama2cAssets.Stories(StoryCount).Concat(Llama2cAssets.EdgeCases))
        {
            List<int> expected = reference.Encode(text);
            Assert.Equal(expected, tokenizer.Encode(text));
            Assert.Equal(expected.Skip(1), tokenizer.Encode(text, addSpecialTokens: false));
            tokens += expected.Count;
        }
        output.WriteLine($"{StoryCount} stories + {Llama2cAssets.EdgeCases.Length} edge cases, {tokens} tokens, all equal");
    }

    [SharedDataFact("stories260K/tok512.bin")]
    public void EdgeCasesExerciseByteFallbackAndMerges()
    {
        TextTokenizer tokenizer = Llama2cAssets.Imported!;
        // Guards the parity test against passing vacuously: these must take the byte path.
        IReadOnlyList<int> emoji = tokenizer.Encode("😀", addSpecialTokens: false);
        Assert.Equal(new[] { tokenizer.TokenToId("\u2581")!.Value, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3 }, emoji);
        Assert.Equal(new[] { 1, tokenizer.TokenToId("\u2581the")!.Value }, tokenizer.Encode("the"));
        Assert.Equal(new[] { 1 }, tokenizer.Encode(""));
    }

    [SharedDataFact("stories260K/tok512.bin", "tinystories/sample.txt")]
    public void DecodeInvertsEncode()
    {
        TextTokenizer tokenizer = Llama2cAssets.Imported!;
        foreach (string text in Llama2cAssets.Stories(StoryCount).Concat(Llama2cAssets.EdgeCases))
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text), skipSpecialTokens: true));
        // Without skipping, BOS is text and keeps the dummy-prefix space (HF: "<s> Hello").
        Assert.Equal("<s> Hello", tokenizer.Decode(tokenizer.Encode("Hello")));
    }

    [SharedDataFact("stories260K/tok512.bin", "stories260K/tok512.model", "tinystories/sample.txt")]
    public void ImportedTokenizerMatchesTheSentencePieceModelInMicrosoftMLTokenizers()
    {
        using FileStream model = File.OpenRead(Llama2cAssets.SentencePieceModel!);
        LlamaTokenizer llama = LlamaTokenizer.Create(model, addBeginOfSentence: true);
        TextTokenizer tokenizer = Llama2cAssets.Imported!;
        int compared = 0;
        foreach (string text in Llama2cAssets.Stories(StoryCount).Concat(Llama2cAssets.EdgeCases))
        {
            // tok512.model keeps SentencePiece's default remove_extra_whitespaces=true (trim, collapse runs of
            // spaces), which llama2.c and HF's Llama conversion do not apply; give our tokenizer that text.
            string collapsed = SentencePieceWhitespace(text);
            // The library returns nothing (not even BOS) for empty text and drops one-char text; skip those.
            if (collapsed.Length < 2) continue;
            Assert.Equal(llama.EncodeToIds(text), tokenizer.Encode(collapsed));
            compared++;
        }
        output.WriteLine($"{compared} texts equal to LlamaTokenizer(tok512.model)");
        Assert.True(compared > StoryCount);
    }

    [SharedDataFact("stories260K/tok512.bin")]
    public void SpecialIdsAndConfigFollowLlama()
    {
        TextTokenizer tokenizer = Llama2cAssets.Imported!;
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal((1, 2, 0), (tokenizer.BosId, tokenizer.EosId, tokenizer.UnkId));
        Assert.Null(tokenizer.PadId);
        Assert.Null(tokenizer.MaskId);
        Assert.Equal(new[] { 2 }, tokenizer.EosIds);
        Assert.Equal("<0x0A>", tokenizer.IdToToken(3 + '\n'));
        Assert.True(tokenizer.IsSpecial(1));
        Assert.False(tokenizer.IsSpecial(3 + 'a'));
    }

    [Fact]
    public void CorruptBinIsAClearError()
    {
        string path = Path.Combine(Path.GetTempPath(), $"dllm-bad-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, [7, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 65]);
        try
        {
            var e = Assert.Throws<DllmException>(() => Llama2cTokenizerImporter.Import(path));
            Assert.Contains("claims 200 bytes", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string SentencePieceWhitespace(string text) =>
        string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
}
