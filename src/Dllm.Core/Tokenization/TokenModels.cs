using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>Picks the tokenizer family from tokenizer.json and builds its model.</summary>
internal static class TokenModels
{
    public static ITokenModel Create(JsonObject tokenizer, IReadOnlyList<AddedToken> added, SpecialTokenNames names)
    {
        BpeModelJson model = BpeModelJson.Parse(tokenizer);
        JsonNode? preTokenizer = tokenizer["pre_tokenizer"];
        if (ByteLevelPreTokenizer.IsByteLevel(preTokenizer))
            return ByteLevelBpeModel.Create(model, ByteLevelPreTokenizer.Parse(preTokenizer));
        return SentencePieceBpeModel.Create(model, preTokenizer, PrependsSpace(tokenizer["normalizer"]), added, names);
    }

    /// <summary>True if the normalizer contains Prepend("▁"), i.e. SentencePiece's add_dummy_prefix.</summary>
    private static bool PrependsSpace(JsonNode? normalizer) => normalizer switch
    {
        JsonObject o when JsonFields.TryString(o["type"], out string? t) && t == "Prepend" =>
            JsonFields.TryString(o["prepend"], out string? p) && p == "\u2581",
        JsonObject o when o["normalizers"] is JsonArray steps => steps.Any(PrependsSpace),
        _ => false,
    };
}
