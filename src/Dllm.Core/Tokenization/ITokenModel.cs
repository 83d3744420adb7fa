using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// A tokenizer family's pre-tokenizer plus model: maps one normalised text segment (no added tokens in it)
/// to ids. The two implementations are ByteLevelBpeModel and SentencePieceBpeModel.
/// </summary>
internal interface ITokenModel
{
    /// <summary>Model vocabulary (token text as stored in tokenizer.json) to id.</summary>
    IReadOnlyDictionary<string, int> Vocabulary { get; }

    string? IdToToken(int id);

    /// <summary>Appends the ids of <paramref name="text"/>; <paramref name="atStart"/> is true for the segment at offset 0 of the input.</summary>
    void Encode(string text, bool atStart, List<int> ids);
}

/// <summary>Picks the tokenizer family from tokenizer.json and builds its model.</summary>
internal static class TokenModels
{
    public static ITokenModel Create(JsonObject tokenizer)
    {
        BpeModelJson model = BpeModelJson.Parse(tokenizer);
        JsonNode? preTokenizer = tokenizer["pre_tokenizer"];
        if (ByteLevelPreTokenizer.IsByteLevel(preTokenizer))
            return ByteLevelBpeModel.Create(model, ByteLevelPreTokenizer.Parse(preTokenizer));
        return SentencePieceBpeModel.Create(model, preTokenizer);
    }
}
