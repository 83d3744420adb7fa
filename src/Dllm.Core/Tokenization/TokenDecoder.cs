using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// Hugging Face decoders: each step rewrites the list of token strings (decode_chain) and the result is
/// concatenated. Covers ByteLevel (byte-level BPE) and Replace/ByteFallback/Fuse/Strip or Metaspace
/// (SentencePiece style).
/// </summary>
internal abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public string Decode(List<string> tokens) => string.Concat(DecodeChain(tokens));

    public static TokenDecoder FromJson(JsonNode? node, string path)
    {
        if (node is null) return new SpaceJoin();
        JsonObject obj = JsonFields.Object(node, path);
        string type = JsonFields.Type(obj, path);
        return type switch
        {
            "Sequence" => new SequenceDecoder(JsonFields.Array(obj["decoders"], $"{path}.decoders")
                .Select((d, i) => FromJson(d, $"{path}.decoders[{i}]")).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => new ReplaceDecoder(TextPattern.FromJson(obj["pattern"], $"{path}.pattern"), JsonFields.String(obj["content"], $"{path}.content")),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(
                OneChar(JsonFields.String(obj["content"], $"{path}.content"), $"{path}.content"),
                JsonFields.Int(obj["start"], $"{path}.start"), JsonFields.Int(obj["stop"], $"{path}.stop")),
            "Metaspace" => new MetaspaceDecoder(
                OneChar(JsonFields.String(obj["replacement"], $"{path}.replacement"), $"{path}.replacement"),
                stripsFirst: (JsonFields.OptString(obj, "prepend_scheme", path)
                    ?? (JsonFields.OptBool(obj, "add_prefix_space", true, path) ? "always" : "never")) != "never"),
            _ => throw JsonFields.Unsupported(path, $"decoder '{type}'"),
        };
    }

    private static char OneChar(string s, string path) => s.Length == 1 ? s[0] : throw JsonFields.Fail(path, "one char");

    /// <summary>No decoder: HF joins the tokens with spaces.</summary>
    private sealed class SpaceJoin : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Join(" ", tokens)];
    }

    private sealed class SequenceDecoder(TokenDecoder[] steps) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            foreach (TokenDecoder step in steps) tokens = step.DecodeChain(tokens);
            return tokens;
        }
    }

    /// <summary>All tokens back to bytes, then one lossy UTF-8 decode (invalid sequences become U+FFFD).</summary>
    private sealed class ByteLevelDecoder : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (string token in tokens) ByteLevelAlphabet.AppendBytes(token, bytes);
            return [Encoding.UTF8.GetString(bytes.ToArray())];
        }
    }

    private sealed class ReplaceDecoder(TextPattern pattern, string content) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t => pattern.Replace(t, content)).ToList();
    }

    /// <summary>
    /// Runs of &lt;0xHH&gt; tokens become the text of their bytes; a run that is not valid UTF-8 becomes one
    /// U+FFFD per byte token, as in HF (not the lossy per-sequence replacement).
    /// </summary>
    private sealed class ByteFallbackDecoder : TokenDecoder
    {
        private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            var run = new List<byte>();
            foreach (string token in tokens)
            {
                if (TryParseByte(token, out byte b))
                {
                    run.Add(b);
                    continue;
                }
                Flush(run, output);
                output.Add(token);
            }
            Flush(run, output);
            return output;
        }

        private static void Flush(List<byte> run, List<string> output)
        {
            if (run.Count == 0) return;
            try
            {
                output.Add(Strict.GetString(run.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                for (int i = 0; i < run.Count; i++) output.Add("\uFFFD");
            }
            run.Clear();
        }

        private static bool TryParseByte(string token, out byte value)
        {
            value = 0;
            return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }
    }

    private sealed class FuseDecoder : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a char from each token.</summary>
    private sealed class StripDecoder(char content, int start, int stop) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(Strip).ToList();

        private string Strip(string token)
        {
            int from = 0, to = token.Length;
            while (from < start && from < to && token[from] == content) from++;
            while (token.Length - to < stop && to > from && token[to - 1] == content) to--;
            return token[from..to];
        }
    }

    /// <summary>"▁" back to spaces; in the first token HF drops them instead (the prepended prefix).</summary>
    private sealed class MetaspaceDecoder(char replacement, bool stripsFirst) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) =>
            tokens.Select((t, i) => i == 0 && stripsFirst ? t.Replace(replacement.ToString(), "") : t.Replace(replacement, ' ')).ToList();
    }
}
