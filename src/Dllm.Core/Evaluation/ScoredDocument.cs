using Dllm.Tokenization;

namespace Dllm.Evaluation;

/// <summary>
/// One document prepared for scoring: its tokens as the model sees them (tokenizer special tokens
/// such as BOS first, then the text, then EOS: knowing where to stop is part of the text) and
/// which positions count (leading special tokens are context only).
/// </summary>
public sealed record ScoredDocument(int[] Tokens, bool[] Scored)
{
    public int ScoredCount => Scored.Count(s => s);

    public static ScoredDocument FromText(TextTokenizer tokenizer, string text, int maxLength)
    {
        var ids = tokenizer.Encode(text, addSpecialTokens: true).ToList();
        if (tokenizer.EosId is { } eos && (ids.Count == 0 || ids[^1] != eos)) ids.Add(eos);
        if (ids.Count > maxLength) ids = ids.Take(maxLength).ToList();
        var lead = 0;
        while (lead < ids.Count && tokenizer.IsSpecial(ids[lead]) && ids[lead] != tokenizer.EosId) lead++;
        return new ScoredDocument(ids.ToArray(), ids.Select((_, i) => i >= lead).ToArray());
    }
}
