namespace Dllm.Tokenization;

/// <summary>
/// Trains a GPT-2-style byte-level BPE tokenizer and writes it as Hugging Face files. Pre-tokens come from
/// GPT-2's regex with one change: digits are split one per pre-token, so every number is spelt digit by digit,
/// which makes column arithmetic learnable. Special tokens (by default only "&lt;|endoftext|&gt;", used as
/// EOS and padding) get the ids after the learned vocabulary; the diffusion mask token is added later, at
/// conversion.
/// </summary>
public static class BpeTrainer
{
    public const string EndOfText = "<|endoftext|>";

    /// <summary>GPT-2's pre-tokenizer pattern with " ?\p{N}" in place of " ?\p{N}+".</summary>
    public const string Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>
    /// Learns merges until the vocabulary (256 bytes plus merge results) has <paramref name="vocabSize"/> tokens,
    /// appends <paramref name="specialTokens"/>, writes tokenizer.json and tokenizer_config.json (each atomically)
    /// into <paramref name="outputDirectory"/> and loads them back.
    /// </summary>
    /// <exception cref="DllmException">The size is below 256, the text is too small for it, or a special token is invalid.</exception>
    public static TextTokenizer Train(IEnumerable<string> documents, int vocabSize, string outputDirectory, IReadOnlyList<string>? specialTokens = null)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        if (vocabSize < 256) throw new DllmException($"vocabulary size {vocabSize} is below the 256 byte tokens of byte-level BPE");
        specialTokens ??= [EndOfText];
        if (specialTokens.Any(string.IsNullOrEmpty)) throw new DllmException("special tokens must be non-empty");
        if (specialTokens.Distinct(StringComparer.Ordinal).Count() != specialTokens.Count)
            throw new DllmException($"special tokens repeat: {string.Join(", ", specialTokens)}");

        Dictionary<string, long> counts = PreTokenCounter.Count(documents, Pattern, specialTokens);
        LearnedBpe bpe = BpeMergeLearner.Learn(counts, vocabSize);
        var learned = bpe.Tokens.ToHashSet(StringComparer.Ordinal);
        string? clash = specialTokens.FirstOrDefault(learned.Contains);
        if (clash is not null) throw new DllmException($"special token '{clash}' is spelt like a learned token");

        // Matched verbatim and never normalised, as HF's add_special_tokens makes them.
        AddedToken[] specials = specialTokens
            .Select((content, i) => new AddedToken(bpe.Tokens.Count + i, content, Normalized: false, Special: true))
            .ToArray();
        var files = new TokenizerFiles(ByteLevelBpeJson.Tokenizer(bpe, Pattern, specials), null, null, null);
        files.Write(outputDirectory, ByteLevelBpeJson.Config(specials));
        return TextTokenizer.Load(outputDirectory);
    }
}
