namespace Dllm.Demo;

/// <summary>
/// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes map to U+0100..
/// in byte order. The loader keeps its own copy private (Tokenization.ByteLevelAlphabet) and maps only text,
/// while the trainer must spell single bytes of a UTF-8 sequence; a test checks both tables agree.
/// </summary>
internal static class ByteLevelChars
{
    private static readonly char[] Table = Build();

    public static char Of(byte b) => Table[b];

    public static string Of(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = Table[bytes[i]];
        return new string(chars);
    }

    private static char[] Build()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }
}
