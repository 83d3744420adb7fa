using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Config;

/// <summary>
/// Writes a <see cref="ModelConfig"/> back as <c>config.json</c>: the original JSON with the fields we
/// own overwritten, so unknown fields survive a load/save round trip.
/// </summary>
public static class ModelConfigWriter
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static JsonObject ToJson(ModelConfig config, string? torchDtype = null)
    {
        var o = (JsonObject)config.Raw.DeepClone();
        o["vocab_size"] = config.VocabSize;
        o["tie_word_embeddings"] = config.TieWordEmbeddings;
        if (config.MaskTokenId is { } mask) o["mask_token_id"] = mask;
        else o.Remove("mask_token_id");
        if (config.Diffusion is { } d) o["dllm"] = new JsonObject { ["block_size"] = d.BlockSize, ["labels"] = d.Labels.Name() };
        else o.Remove("dllm");
        if (torchDtype is not null) o["torch_dtype"] = torchDtype;
        // Newer transformers (and LLaDA2.1's config.json) name it "dtype"; keep that one true as well.
        if (torchDtype is not null && o.ContainsKey("dtype")) o["dtype"] = torchDtype;
        return o;
    }

    public static string ToJsonString(ModelConfig config, string? torchDtype = null) => ToJson(config, torchDtype).ToJsonString(Indented) + "\n";
}
