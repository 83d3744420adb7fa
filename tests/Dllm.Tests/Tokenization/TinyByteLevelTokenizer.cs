using System.Text.Json.Nodes;
using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

/// <summary>
/// A hand-made Qwen-style byte-level tokenizer.json: the 256 byte chars as ids 0..255 (id = byte value),
/// seven merges, Qwen2's split regex, NFC, and the ChatML special tokens.
/// </summary>
public static class TinyByteLevelTokenizer
{
    public const string QwenPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public const int He = 256, Ll = 257, Hell = 258, Hello = 259, SpaceT = 260, SpaceThe = 261, EAcute = 262;
    public const int EndOfText = 263, ImStart = 264, ImEnd = 265, Xyz = 266;

    /// <summary>GPT-2's bytes_to_unicode, written out independently of the library's table.</summary>
    public static char ByteChar(int b)
    {
        bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
        if (printable) return (char)b;
        int shifted = 0;
        for (int x = 0; x < b; x++)
            if (!(x is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255)) shifted++;
        return (char)(256 + shifted);
    }

    public static JsonObject Json(bool pairMerges = false, bool ignoreMerges = false)
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteChar(b).ToString()] = b;
        string space = ByteChar(' ').ToString(), e = ByteChar(0xC3).ToString(), acute = ByteChar(0xA9).ToString();
        (string, string, int)[] merges =
        [
            ("h", "e", He), ("l", "l", Ll), ("he", "ll", Hell), ("hell", "o", Hello),
            (space, "t", SpaceT), (space + "t", "he", SpaceThe), (e, acute, EAcute),
        ];
        foreach ((string left, string right, int id) in merges) vocab[left + right] = id;
        vocab["xyz"] = Xyz; // reachable only through ignore_merges: there is no merge for it

        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Added(EndOfText, "<|endoftext|>"), Added(ImStart, "<|im_start|>"), Added(ImEnd, "<|im_end|>")),
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = QwenPattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = ignoreMerges,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => pairMerges ? (JsonNode)new JsonArray(m.Item1, m.Item2) : $"{m.Item1} {m.Item2}").ToArray()),
            },
        };
    }

    public static JsonObject TokenizerConfigJson() => new()
    {
        ["bos_token"] = null,
        ["eos_token"] = "<|endoftext|>",
        ["pad_token"] = "<|endoftext|>",
        ["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
        ["tokenizer_class"] = "Qwen2Tokenizer",
    };

    /// <summary>Writes the files to <paramref name="dir"/> and loads them the public way.</summary>
    public static TextTokenizer Load(TempDirectory dir, JsonObject json, JsonObject? config = null)
    {
        File.WriteAllText(dir.File("tokenizer.json"), json.ToJsonString());
        if (config is not null) File.WriteAllText(dir.File("tokenizer_config.json"), config.ToJsonString());
        return TextTokenizer.Load(dir.Path);
    }

    private static JsonObject Added(int id, string content) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
        ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
    };
}
