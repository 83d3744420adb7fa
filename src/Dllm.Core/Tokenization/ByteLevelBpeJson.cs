using System.Globalization;
using System.Text.Json.Nodes;

namespace Dllm.Tokenization;

/// <summary>
/// Spells a learned byte-level BPE as the Hugging Face files: a GPT-2-style tokenizer.json (Split regex then
/// ByteLevel, ByteLevel decoder and post-processor, "a b" merges) and a tokenizer_config.json whose first
/// special token is EOS and padding, with no BOS, as GPT-2 has it.
/// </summary>
internal static class ByteLevelBpeJson
{
    // GPT-2's default context; only advisory for a tokenizer, but transformers warns without it.
    private const int ModelMaxLength = 1024;

    public static JsonObject Tokenizer(LearnedBpe bpe, string pattern, IReadOnlyList<AddedToken> specials)
    {
        var vocab = new JsonObject();
        for (int id = 0; id < bpe.Tokens.Count; id++) vocab[bpe.Tokens[id]] = id;
        // Like GPT-2's "<|endoftext|>", the specials are in the model vocab too, so the vocab alone lists every id.
        foreach (AddedToken special in specials) vocab[special.Content] = special.Id;

        JsonObject ByteLevel() => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(specials.Select(s => (JsonNode)s.ToJson(withId: true)).ToArray()),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    ByteLevel()),
            },
            ["post_processor"] = ByteLevel(),
            ["decoder"] = ByteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(bpe.Merges.Select(m => (JsonNode)$"{m.Left} {m.Right}").ToArray()),
            },
        };
    }

    public static JsonObject Config(IReadOnlyList<AddedToken> specials)
    {
        string? eos = specials.Count > 0 ? specials[0].Content : null;
        var decoder = new JsonObject();
        foreach (AddedToken special in specials) decoder[special.Id.ToString(CultureInfo.InvariantCulture)] = special.ToJson(withId: false);
        return new JsonObject
        {
            ["add_bos_token"] = false,
            ["add_prefix_space"] = false,
            ["added_tokens_decoder"] = decoder,
            ["bos_token"] = null,
            // transformers would otherwise strip spaces before punctuation when decoding, breaking the round trip.
            ["clean_up_tokenization_spaces"] = false,
            ["eos_token"] = eos,
            ["errors"] = "replace",
            ["model_max_length"] = ModelMaxLength,
            ["pad_token"] = eos,
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["unk_token"] = null,
        };
    }
}
