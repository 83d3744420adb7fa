using System.Text;

namespace Dllm.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-char map: printable Latin-1 bytes stand for themselves, the other 68
/// bytes are shifted to U+0100.. so every byte-level token is printable text ("Ġ" is the space byte).
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>The alphabet char that stands for one byte (BPE training spells single bytes of UTF-8 sequences).</summary>
    public static char Of(byte b) => ByteToChar[b];

    /// <summary>The byte-level form of text: its UTF-8 bytes, each shown as its alphabet char.</summary>
    public static string Encode(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>
    /// The bytes a token stands for. Like HF's ByteLevel decoder, a token with a char outside the alphabet
    /// (an added token such as "<｜end▁of▁sentence｜>") contributes its own UTF-8 bytes instead.
    /// </summary>
    public static void AppendBytes(string token, List<byte> output)
    {
        int start = output.Count;
        foreach (char c in token)
        {
            if (!CharToByte.TryGetValue(c, out byte b))
            {
                output.RemoveRange(start, output.Count - start);
                output.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
            output.Add(b);
        }
    }

    private static char[] BuildTable()
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
