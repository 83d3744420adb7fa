using System.Security.Cryptography;
using System.Text;
using Dllm.Tokenization;

namespace Dllm.Data;

/// <summary>
/// A SHA-256 of the tokenizer's saved files, so a token cache is rebuilt whenever the tokenizer would encode
/// differently. Hashing what Save writes covers every setting (vocabulary, merges, normaliser, added tokens)
/// without this code having to know them; a change that cannot alter encoding (e.g. the chat template)
/// costs one needless rebuild, never a stale cache.
/// </summary>
internal static class TokenizerFingerprint
{
    public static string Of(TextTokenizer tokenizer)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"dllm-tokenizer-{Guid.NewGuid():N}");
        try
        {
            tokenizer.Save(folder);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (string file in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
            {
                byte[] content = File.ReadAllBytes(file);
                // Name and length first, so no two different file sets hash the same byte stream.
                hash.AppendData(Encoding.UTF8.GetBytes($"{Path.GetFileName(file)}\0{content.Length}\0"));
                hash.AppendData(content);
            }
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
