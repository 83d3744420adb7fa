using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// One entry of tokenizer.json's "added_tokens": text matched verbatim before normalisation and the model.
/// The flags keep Hugging Face's meaning (see AddedVocabulary for how they act on matching).
/// </summary>
internal sealed record AddedToken(
    int Id,
    string Content,
    bool SingleWord = false,
    bool LStrip = false,
    bool RStrip = false,
    bool Normalized = false,
    bool Special = true)
{
    /// <summary>Reads an added-token object; missing flags take HF's AddedToken defaults (normalized = true).</summary>
    public static AddedToken Parse(JsonObject obj, int id, string path)
    {
        string content = JsonFields.String(obj["content"], $"{path}.content");
        if (content.Length == 0) throw JsonFields.Fail($"{path}.content", "a non-empty string");
        return new AddedToken(
            id,
            content,
            JsonFields.OptBool(obj, "single_word", false, path),
            JsonFields.OptBool(obj, "lstrip", false, path),
            JsonFields.OptBool(obj, "rstrip", false, path),
            JsonFields.OptBool(obj, "normalized", true, path),
            JsonFields.OptBool(obj, "special", false, path));
    }

    /// <summary>The object HF writes: with "id" in tokenizer.json, without it in tokenizer_config.json.</summary>
    public JsonObject ToJson(bool withId)
    {
        var obj = new JsonObject();
        if (withId) obj["id"] = Id;
        obj["content"] = Content;
        obj["single_word"] = SingleWord;
        obj["lstrip"] = LStrip;
        obj["rstrip"] = RStrip;
        obj["normalized"] = Normalized;
        obj["special"] = Special;
        return obj;
    }
}
