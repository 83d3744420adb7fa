using Dllm.Tokenization;

namespace Dllm.Data;

/// <summary>
/// A tokenised corpus in a cache folder, split into training and held-out validation documents.
/// <para>
/// Layout (all little-endian): <c>train.tokens</c> / <c>valid.tokens</c> hold int32 token ids, each document's
/// tokens (encoded without special tokens) followed by the EOS id, which ends it; <c>train.docs</c> /
/// <c>valid.docs</c> hold the int64 token offset at which each document starts; <c>manifest.json</c> records the
/// source files (full path, size, last write time), the tokenizer fingerprint, format, options and counts.
/// Token files are memory-mapped, so the corpus may be larger than RAM.
/// </para>
/// </summary>
public sealed class TokenCorpus : IDisposable
{
    private readonly TokenSplit _train;
    private readonly TokenSplit _valid;

    private TokenCorpus(string cacheDirectory, CorpusManifest manifest, TokenSplit train, TokenSplit valid)
    {
        CacheDirectory = cacheDirectory;
        EosId = manifest.EosId;
        _train = train;
        _valid = valid;
    }

    public string CacheDirectory { get; }
    public long TrainTokens => _train.Tokens;
    public long ValidTokens => _valid.Tokens;
    public long TrainDocuments => _train.Documents;
    public long ValidDocuments => _valid.Documents;
    public int EosId { get; }

    /// <summary>
    /// Tokenises <paramref name="paths"/> into <paramref name="cacheDirectory"/>, replacing any cache there, and opens it.
    /// <paramref name="documentsDone"/> hears the running count of documents encoded.
    /// </summary>
    /// <exception cref="DllmException">A file is missing or malformed, the corpus is empty, or the folder cannot be written.</exception>
    public static TokenCorpus Build(
        IReadOnlyList<string> paths, TextTokenizer tokenizer, string cacheDirectory, CorpusOptions options,
        IProgress<long>? documentsDone = null, CorpusFormat format = CorpusFormat.Auto)
    {
        var (recipe, eos) = Prepare(paths, tokenizer, cacheDirectory, options, format);
        return BuildFrom(recipe, eos, paths, tokenizer, cacheDirectory, options, documentsDone, format);
    }

    /// <summary>
    /// Opens the cache in <paramref name="cacheDirectory"/> if it was built from the same files (path, size, write
    /// time), tokenizer, format and options; otherwise builds it as <see cref="Build"/> does.
    /// </summary>
    public static TokenCorpus BuildOrOpen(
        IReadOnlyList<string> paths, TextTokenizer tokenizer, string cacheDirectory, CorpusOptions options,
        IProgress<long>? documentsDone = null, CorpusFormat format = CorpusFormat.Auto)
    {
        var (recipe, eos) = Prepare(paths, tokenizer, cacheDirectory, options, format);
        if (TryOpenMatching(cacheDirectory, recipe) is TokenCorpus cached) return cached;
        return BuildFrom(recipe, eos, paths, tokenizer, cacheDirectory, options, documentsDone, format);
    }

    /// <summary>Opens a cache folder as written by <see cref="Build"/>.</summary>
    /// <exception cref="DllmException">The folder is not a cache, or its files disagree with its manifest.</exception>
    public static TokenCorpus Open(string cacheDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(cacheDirectory);
        string folder = Path.GetFullPath(cacheDirectory);
        if (!Directory.Exists(folder)) throw new DllmException($"token cache folder '{folder}' does not exist");
        CorpusManifest manifest = CorpusManifest.Read(folder);
        TokenSplit train = TokenSplit.Open(folder, SplitFiles.Train, manifest.Train);
        try
        {
            TokenSplit valid = TokenSplit.Open(folder, SplitFiles.Valid, manifest.Valid);
            return new TokenCorpus(folder, manifest, train, valid);
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>The training tokens cut into windows of <paramref name="sequenceLength"/>.</summary>
    /// <exception cref="DllmException">The training split holds fewer than <paramref name="sequenceLength"/> tokens.</exception>
    public PackedSequences Train(int sequenceLength) => new(_train, sequenceLength);

    /// <summary>The validation tokens cut into windows of <paramref name="sequenceLength"/>.</summary>
    /// <exception cref="DllmException">The validation split holds fewer than <paramref name="sequenceLength"/> tokens.</exception>
    public PackedSequences Valid(int sequenceLength) => new(_valid, sequenceLength);

    /// <summary>Each validation document's tokens including its trailing EOS, in order, unpacked (for per-document evaluation).</summary>
    public IEnumerable<int[]> ValidationDocuments()
    {
        for (long document = 0; document < _valid.Documents; document++)
        {
            long start = _valid.DocumentStart(document);
            var tokens = new int[checked((int)(_valid.DocumentStart(document + 1) - start))];
            _valid.ReadTokens(start, tokens);
            yield return tokens;
        }
    }

    public void Dispose()
    {
        _train.Dispose();
        _valid.Dispose();
    }

    private static (CorpusRecipe Recipe, int Eos) Prepare(
        IReadOnlyList<string> paths, TextTokenizer tokenizer, string cacheDirectory, CorpusOptions options, CorpusFormat format)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(cacheDirectory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (paths.Count == 0) throw new DllmException("no corpus files were given");
        int eos = tokenizer.EosId ?? throw new DllmException("the tokenizer has no EOS token; the corpus needs one to mark where each document ends");
        // Stamped before reading: a file edited during the build then mismatches next time and is rebuilt.
        SourceStamp[] sources = [.. paths.Select(SourceStamp.Of)];
        return (CorpusRecipe.Of(sources, format, TokenizerFingerprint.Of(tokenizer), options), eos);
    }

    private static TokenCorpus BuildFrom(
        CorpusRecipe recipe, int eos, IReadOnlyList<string> paths, TextTokenizer tokenizer, string cacheDirectory,
        CorpusOptions options, IProgress<long>? documentsDone, CorpusFormat format)
    {
        IEnumerable<string> documents = CorpusReader.ReadDocuments(paths, format, options.TextField);
        CacheFolder.Replace(cacheDirectory, folder => CorpusBuilder.Write(documents, tokenizer, eos, recipe, options, folder, documentsDone));
        return Open(cacheDirectory);
    }

    /// <summary>The cache if its manifest has this recipe and its files are intact; null means "build it".</summary>
    private static TokenCorpus? TryOpenMatching(string cacheDirectory, CorpusRecipe recipe)
    {
        if (!CorpusManifest.Exists(cacheDirectory)) return null;
        try
        {
            if (!CorpusManifest.Read(cacheDirectory).Recipe.Equals(recipe)) return null;
            return Open(cacheDirectory);
        }
        catch (DllmException)
        {
            // An unreadable, old-version or damaged cache is rebuilt, as a cache should be.
            return null;
        }
    }
}
