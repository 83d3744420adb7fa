using System.Text;

namespace Dllm.Tokenization;

/// <summary>
/// llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 byte length
/// and the UTF-8 bytes, little-endian. The vocabulary size is implied by the file length.
/// </summary>
internal sealed record Llama2cTokenizerBin(string[] Pieces, float[] Scores)
{
    private const int MaxVocab = 1 << 22;

    public static Llama2cTokenizerBin Read(string path)
    {
        if (!File.Exists(path)) throw new DllmException($"llama2.c tokenizer '{path}' does not exist");
        byte[] data = File.ReadAllBytes(path);
        var pieces = new List<string>();
        var scores = new List<float>();
        var strict = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        int offset = 4; // skip max_token_length: it only sizes llama2.c's buffers
        if (data.Length < offset) throw Corrupt(path, "it is shorter than its 4-byte header");
        while (offset < data.Length)
        {
            if (data.Length - offset < 8) throw Corrupt(path, $"token {pieces.Count} is cut off");
            float score = BitConverter.ToSingle(data, offset);
            int length = BitConverter.ToInt32(data, offset + 4);
            offset += 8;
            if (length < 0 || length > data.Length - offset) throw Corrupt(path, $"token {pieces.Count} claims {length} bytes");
            try
            {
                pieces.Add(strict.GetString(data, offset, length));
            }
            catch (DecoderFallbackException)
            {
                throw Corrupt(path, $"token {pieces.Count} is not valid UTF-8");
            }
            scores.Add(score);
            offset += length;
            if (pieces.Count > MaxVocab) throw Corrupt(path, "it has more than 4M tokens");
        }
        return new Llama2cTokenizerBin(pieces.ToArray(), scores.ToArray());
    }

    private static DllmException Corrupt(string path, string why) => new($"'{path}' is not a llama2.c tokenizer.bin: {why}");
}
