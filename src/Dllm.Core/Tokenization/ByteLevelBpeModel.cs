using Microsoft.ML.Tokenizers;

namespace Dllm.Tokenization;

/// <summary>
/// Byte-level BPE (GPT-2, Qwen2/3, Llama-3, Ling): the text is split by the pre-tokenizer regex, each
/// piece is mapped to its UTF-8 bytes and merged by rank in Microsoft.ML.Tokenizers' BpeTokenizer.
/// We run the split ourselves rather than inside the library so that astral characters stay whole
/// (see PreTokenRegex) and ignore_merges can look a whole piece up first, as HF does for Llama-3.
/// Added tokens never reach this class, so the library gets none: its own special-token matching would
/// ignore HF's single_word/lstrip/rstrip flags.
/// </summary>
internal sealed class ByteLevelBpeModel : ITokenModel
{
    private readonly BpeTokenizer _bpe;
    private readonly BpeModelJson _model;
    private readonly ByteLevelPreTokenizer _preTokenizer;

    private ByteLevelBpeModel(BpeTokenizer bpe, BpeModelJson model, ByteLevelPreTokenizer preTokenizer) =>
        (_bpe, _model, _preTokenizer) = (bpe, model, preTokenizer);

    public static ByteLevelBpeModel Create(BpeModelJson model, ByteLevelPreTokenizer preTokenizer)
    {
        if (model.ByteFallback)
            throw JsonFields.Unsupported(BpeModelJson.Path, "byte_fallback together with a ByteLevel pre-tokenizer");
        var merges = new List<string>(model.Merges.Count);
        foreach ((string left, string right) in model.Merges)
        {
            // The library takes merges as "left right" lines; byte-level tokens never contain a space.
            if (left.Contains(' ') || right.Contains(' '))
                throw new DllmException($"{BpeModelJson.Path}.merges: merge ('{left}', '{right}') contains a space, which byte-level BPE cannot have");
            merges.Add($"{left} {right}");
        }

        var options = new BpeOptions(model.Vocab)
        {
            Merges = merges,
            ByteLevel = true,
            // Unused by Encode below (it passes pre-split pieces), but keeps the library tokenizer correct on its own.
            PreTokenizer = new RegexPreTokenizer(
                (preTokenizer.Pattern ?? new PreTokenRegex("(?s:.+)", BpeModelJson.Path)).Regex, specialTokens: null),
        };
        try
        {
            return new ByteLevelBpeModel(BpeTokenizer.Create(options), model, preTokenizer);
        }
        catch (InvalidOperationException e)
        {
            throw new DllmException($"{BpeModelJson.Path}: {e.Message}", e);
        }
    }

    public IReadOnlyDictionary<string, int> Vocabulary => _model.Vocab;

    public string? IdToToken(int id) => (uint)id < (uint)_model.IdToToken.Length ? _model.IdToToken[id] : null;

    public void Encode(string text, bool atStart, List<int> ids)
    {
        if (text.Length == 0) return;
        if (_preTokenizer.PrefixSegment && text[0] != ' ') text = " " + text;
        if (_preTokenizer.Pattern is null)
        {
            EncodePiece(text, ids);
            return;
        }
        foreach ((int start, int length) in _preTokenizer.Pattern.Split(text))
        {
            string piece = text.Substring(start, length);
            if (_preTokenizer.PrefixPieces && piece[0] != ' ') piece = " " + piece;
            EncodePiece(piece, ids);
        }
    }

    private void EncodePiece(string piece, List<int> ids)
    {
        if (_model.IgnoreMerges && _model.Vocab.TryGetValue(ByteLevelAlphabet.Encode(piece), out int whole))
        {
            ids.Add(whole);
            return;
        }
        ids.AddRange(_bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
    }
}
