using System.Text.Json;
using System.Text.Json.Serialization;
using Dllm.IO;

namespace Dllm.Data;

/// <summary>A source file as it was when the cache was built; any change in size or write time means a rebuild.</summary>
internal sealed record SourceStamp(string Path, long Size, DateTime LastWriteUtc)
{
    public static SourceStamp Of(string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists) throw new DllmException($"corpus file '{path}' does not exist");
        return new SourceStamp(file.FullName, file.Length, file.LastWriteTimeUtc);
    }
}

/// <summary>Everything a token cache is made from; two equal recipes give byte-identical caches.</summary>
internal sealed record CorpusRecipe(
    SourceStamp[] Sources, CorpusFormat Format, string TextField, string Tokenizer,
    double ValidationFraction, long Seed, int MaxValidationDocuments)
{
    public static CorpusRecipe Of(IReadOnlyList<SourceStamp> sources, CorpusFormat format, string tokenizer, CorpusOptions options) =>
        new([.. sources], format, options.TextField, tokenizer, options.ValidationFraction, options.Seed, options.MaxValidationDocuments);

    // A record compares arrays by reference; the sources must compare by content.
    public bool Equals(CorpusRecipe? other) =>
        other is not null && Sources.SequenceEqual(other.Sources) && Format == other.Format && TextField == other.TextField &&
        Tokenizer == other.Tokenizer && ValidationFraction.Equals(other.ValidationFraction) && Seed == other.Seed &&
        MaxValidationDocuments == other.MaxValidationDocuments;

    public override int GetHashCode() => HashCode.Combine(Sources.Length, Format, TextField, Tokenizer, ValidationFraction, Seed, MaxValidationDocuments);
}

internal sealed record SplitCounts(long Tokens, long Documents);

/// <summary>
/// manifest.json of a token cache: the recipe it was built from and the size of each split. It is written
/// last, so a folder with a manifest holds complete token and document files.
/// </summary>
internal sealed record CorpusManifest(int Version, CorpusRecipe Recipe, int EosId, SplitCounts Train, SplitCounts Valid)
{
    public const string FileName = "manifest.json";

    /// <summary>Bump when the cache layout changes, so older caches are rebuilt instead of misread.</summary>
    public const int CurrentVersion = 2;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, FileName));

    /// <exception cref="DllmException">The manifest is missing, unreadable, or of another version.</exception>
    public static CorpusManifest Read(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new DllmException($"'{directory}' is not a token corpus cache: it has no {FileName}");
        CorpusManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<CorpusManifest>(File.ReadAllText(path), Json);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new DllmException($"cannot read '{path}': {e.Message}", e);
        }
        if (manifest is null) throw new DllmException($"'{path}' is empty (null)");
        if (manifest.Version != CurrentVersion)
            throw new DllmException($"'{path}' has cache version {manifest.Version}, this build reads version {CurrentVersion}; delete the folder to rebuild");
        return manifest;
    }

    public void Write(string directory) =>
        AtomicFile.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json) + "\n");
}
