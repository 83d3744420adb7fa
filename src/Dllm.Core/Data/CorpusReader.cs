namespace Dllm.Data;

/// <summary>
/// Streams the documents of corpus files, one file after another in the order given. Nothing is read
/// until the sequence is enumerated, and each reader holds one line, one text chunk or one Parquet row
/// group at a time, so files larger than memory stream through.
/// </summary>
public static class CorpusReader
{
    /// <summary>
    /// The documents of <paramref name="paths"/>, lazily. With <see cref="CorpusFormat.Auto"/> the format comes from
    /// each file's extension: .txt/.text/.md are text, .jsonl/.json/.ndjson JSON Lines, .parquet Parquet.
    /// <paramref name="field"/> names the string field (JSON Lines) or column (Parquet) holding the text.
    /// See <see cref="TextDocuments"/>, <see cref="JsonlDocuments"/> and <see cref="ParquetDocuments"/> for each layout.
    /// </summary>
    /// <exception cref="DllmException">
    /// Thrown at once (before enumeration) for no paths, a missing file or an unknown extension; thrown during
    /// enumeration, naming the file (and line), for malformed content.
    /// </exception>
    public static IEnumerable<string> ReadDocuments(IReadOnlyList<string> paths, CorpusFormat format = CorpusFormat.Auto, string field = "text")
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0) throw new DllmException("no corpus files were given");
        if (string.IsNullOrWhiteSpace(field)) throw new DllmException("the corpus text field name is empty");
        // Checked eagerly so a typo in the last of many paths fails before hours of tokenising, not after.
        var sources = paths.Select(path => (Path: Existing(path), Format: Resolve(path, format))).ToArray();
        return Stream(sources, field);
    }

    /// <summary>The format a file is read as: <paramref name="format"/> itself unless it is Auto.</summary>
    public static CorpusFormat Resolve(string path, CorpusFormat format)
    {
        if (format != CorpusFormat.Auto) return format;
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".txt" or ".text" or ".md" => CorpusFormat.Text,
            ".jsonl" or ".json" or ".ndjson" => CorpusFormat.Jsonl,
            ".parquet" => CorpusFormat.Parquet,
            var other => throw new DllmException(
                $"cannot tell the format of corpus file '{path}' from its extension '{other}': use .txt/.text/.md, .jsonl/.json/.ndjson or .parquet, or name the format"),
        };
    }

    private static string Existing(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path)) return path;
        throw new DllmException(Directory.Exists(path)
            ? $"corpus file '{path}' is a directory; list the files in it instead"
            : $"corpus file '{path}' does not exist");
    }

    private static IEnumerable<string> Stream((string Path, CorpusFormat Format)[] sources, string field)
    {
        foreach (var (path, format) in sources)
        {
            IEnumerable<string> documents = format switch
            {
                CorpusFormat.Text => TextDocuments.Read(path),
                CorpusFormat.Jsonl => JsonlDocuments.Read(path, field),
                CorpusFormat.Parquet => ParquetDocuments.Read(path, field),
                _ => throw new ArgumentOutOfRangeException(nameof(sources), format, "unresolved corpus format"),
            };
            foreach (string document in documents) yield return document;
        }
    }

    /// <summary>Opens a corpus file for sequential reading, turning I/O failures into errors that name it.</summary>
    internal static FileStream Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DllmException($"cannot read corpus file '{path}': {e.Message}", e);
        }
    }
}
