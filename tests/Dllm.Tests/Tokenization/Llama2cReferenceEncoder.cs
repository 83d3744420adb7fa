using System.Text;

namespace Dllm.Tests.Tokenization;

/// <summary>
/// An independent, deliberately naive transcription of llama2.c's encode() (run.c), reading tokenizer.bin
/// itself: BOS, a dummy " " token when the text is non-empty, one token per UTF-8 code point (or its bytes
/// as ids byte+3), then repeatedly merge the adjacent pair whose concatenation is in the vocab with the
/// highest score, the leftmost pair on ties.
/// </summary>
internal sealed class Llama2cReferenceEncoder
{
    private readonly string[] _vocab;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _lookup = new(StringComparer.Ordinal);

    public Llama2cReferenceEncoder(string tokenizerBinPath)
    {
        using var reader = new BinaryReader(File.OpenRead(tokenizerBinPath));
        reader.ReadInt32(); // max_token_length
        var vocab = new List<string>();
        var scores = new List<float>();
        while (reader.BaseStream.Position < reader.BaseStream.Length)
        {
            scores.Add(reader.ReadSingle());
            int length = reader.ReadInt32();
            vocab.Add(Encoding.UTF8.GetString(reader.ReadBytes(length)));
        }
        _vocab = vocab.ToArray();
        _scores = scores.ToArray();
        // run.c finds strings by binary search over a sorted copy; any lookup of a unique string is equivalent.
        for (int i = 0; i < _vocab.Length; i++) _lookup.TryAdd(_vocab[i], i);
    }

    public List<int> Encode(string text, bool bos = true)
    {
        var tokens = new List<int>();
        if (bos) tokens.Add(1);
        if (text.Length > 0) tokens.Add(_lookup[" "]);

        foreach (Rune rune in text.EnumerateRunes())
        {
            if (_lookup.TryGetValue(rune.ToString(), out int id))
            {
                tokens.Add(id);
                continue;
            }
            var bytes = new byte[rune.Utf8SequenceLength];
            rune.EncodeToUtf8(bytes);
            foreach (byte b in bytes) tokens.Add(b + 3);
        }

        while (true)
        {
            float bestScore = -1e10f;
            int bestId = -1, bestIndex = -1;
            for (int i = 0; i < tokens.Count - 1; i++)
            {
                if (_lookup.TryGetValue(_vocab[tokens[i]] + _vocab[tokens[i + 1]], out int id) && _scores[id] > bestScore)
                {
                    bestScore = _scores[id];
                    bestId = id;
                    bestIndex = i;
                }
            }
            if (bestIndex == -1) break;
            tokens[bestIndex] = bestId;
            tokens.RemoveAt(bestIndex + 1);
        }
        return tokens;
    }
}
