using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

/// <summary>The stories260K tokenizer files and TinyStories texts shared by the tokenizer tests.</summary>
internal static class Llama2cAssets
{
    private static readonly Lazy<TextTokenizer?> LazyImported = new(() =>
        TokenizerBin is null ? null : Llama2cTokenizerImporter.Import(TokenizerBin));

    public static string? TokenizerBin => Existing("stories260K/tok512.bin");

    public static string? SentencePieceModel => Existing("stories260K/tok512.model");

    /// <summary>tok512.bin imported once for all tests (immutable, so sharing is safe).</summary>
    public static TextTokenizer? Imported => LazyImported.Value;

    /// <summary>The first <paramref name="count"/> TinyStories stories, each as written between the separators (with its final newline).</summary>
    public static IReadOnlyList<string> Stories(int count)
    {
        string path = Existing("tinystories/sample.txt") ?? throw new InvalidOperationException("no TinyStories sample");
        string[] stories = File.ReadAllText(path).Split("<|endoftext|>\n");
        Assert.True(stories.Length > count, $"sample.txt has only {stories.Length} stories");
        return stories.Take(count).ToArray();
    }

    /// <summary>
    /// Hand-picked cases: empty, spaces, newlines, digits, curly quotes (pieces in tok512), and
    /// characters tok512 lacks, which need byte fallback (ü, ß, CJK, emoji, a skin-tone sequence).
    /// </summary>
    public static readonly string[] EdgeCases =
    [
        "", " ", "   ", "a", "Hello", " Hello", "Hello ", "  two  spaces  between  ", "\n", "line one\nline two\n\nline four",
        "\ttab and\r\nCRLF", "digits 0123456789 and 3.14, 1,000,000", "“Curly” ‘quotes’ – dashes — and… ellipsis",
        "naïve café über Straße", "中文字符测试", "emoji 😀 and 👍🏽 thumbs", "mixed é😀\n中 x", "\u00a0non-breaking",
        "Ω≈ç√∫ math", "Lily said, \"Let's go!\" and ran.",
    ];

    private static string? Existing(string relative)
    {
        if (TestData.SharedData is null) return null;
        string path = Path.Combine(TestData.SharedData, relative);
        return File.Exists(path) ? path : null;
    }
}
