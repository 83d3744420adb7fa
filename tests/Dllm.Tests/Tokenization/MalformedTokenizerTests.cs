using System.Text.Json.Nodes;
using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

public sealed class MalformedTokenizerTests
{
    [Fact]
    public void MissingDirectoryOrFileIsAClearError()
    {
        using var dir = new TempDirectory();
        Assert.Contains("does not exist", Assert.Throws<DllmException>(() => TextTokenizer.Load(dir.File("nope"))).Message);
        Assert.Contains("no tokenizer.json", Assert.Throws<DllmException>(() => TextTokenizer.Load(dir.Path)).Message);
    }

    [Fact]
    public void InvalidJsonIsAClearError()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("tokenizer.json"), "{ \"model\": { \"type\": \"BPE\", ");
        Assert.Contains("is not valid JSON", Assert.Throws<DllmException>(() => TextTokenizer.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("tokenizer.json"), "[1, 2]");
        Assert.Contains("tokenizer.json must be an object", Assert.Throws<DllmException>(() => TextTokenizer.Load(dir.Path)).Message);
    }

    [Fact]
    public void InvalidConfigJsonIsAClearError()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("tokenizer_config.json"), "not json");
        var e = Assert.Throws<DllmException>(() => TinyByteLevelTokenizer.Load(dir, TinyByteLevelTokenizer.Json()));
        Assert.Contains("tokenizer_config.json is not valid JSON", e.Message);
    }

    [Fact]
    public void MissingModelIsAClearError()
    {
        JsonObject json = TinyByteLevelTokenizer.Json();
        json.Remove("model");
        Assert.Contains("has no 'model' section", Load(json).Message);
    }

    [Theory]
    [InlineData("WordPiece", "model type 'WordPiece' is not supported")]
    [InlineData("Unigram", "model type 'Unigram' is not supported")]
    public void UnsupportedModelTypeIsNamed(string type, string message)
    {
        JsonObject json = TinyByteLevelTokenizer.Json();
        json["model"]!["type"] = type;
        Assert.Contains(message, Load(json).Message);
    }

    [Fact]
    public void UnsupportedComponentsAreNamed()
    {
        JsonObject normalizer = TinyByteLevelTokenizer.Json();
        normalizer["normalizer"] = new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = "" };
        Assert.Contains("normalizer 'Precompiled' is not supported", Load(normalizer).Message);

        JsonObject decoder = TinyByteLevelTokenizer.Json();
        decoder["decoder"] = new JsonObject { ["type"] = "WordPiece" };
        Assert.Contains("decoder 'WordPiece' is not supported", Load(decoder).Message);

        JsonObject preTokenizer = TinyByteLevelTokenizer.Json();
        preTokenizer["pre_tokenizer"]!["pretokenizers"]!.AsArray().Insert(0, new JsonObject { ["type"] = "Digits", ["individual_digits"] = true });
        Assert.Contains("pre-tokenizer sequence [Digits, Split, ByteLevel] is not supported", Load(preTokenizer).Message);

        JsonObject noFallback = TinyByteLevelTokenizer.Json();
        noFallback["pre_tokenizer"] = null;
        Assert.Contains("without byte_fallback", Load(noFallback).Message);
    }

    [Fact]
    public void BadFieldsNameTheirJsonPath()
    {
        JsonObject json = TinyByteLevelTokenizer.Json();
        json["model"]!["merges"]!.AsArray().Add("too many spaces here");
        Assert.Contains("tokenizer.json:model.merges[7] must be", Load(json).Message);

        JsonObject unknownToken = TinyByteLevelTokenizer.Json();
        unknownToken["model"]!["merges"]!.AsArray().Add("q z");
        Assert.Contains("tokenizer.json:model", Load(unknownToken).Message);
    }

    private static DllmException Load(JsonObject json)
    {
        using var dir = new TempDirectory();
        return Assert.Throws<DllmException>(() => TinyByteLevelTokenizer.Load(dir, json));
    }
}
