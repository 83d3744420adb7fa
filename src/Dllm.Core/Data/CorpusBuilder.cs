using System.Runtime.ExceptionServices;
using Dllm.Tokenization;

namespace Dllm.Data;

/// <summary>
/// Tokenises a document stream into a cache folder. Documents are read and encoded a chunk at a time (in
/// parallel within the chunk, written in order), so memory is bounded by the chunk, not by the corpus.
/// </summary>
internal static class CorpusBuilder
{
    // Big enough to keep every core busy, small enough that a chunk of long documents stays in memory comfortably.
    private const int ChunkDocuments = 256;
    private const long ChunkCharacters = 16L << 20;

    /// <exception cref="DllmException">No documents, or the training split would be empty.</exception>
    public static CorpusManifest Write(
        IEnumerable<string> documents, TextTokenizer tokenizer, int eos, CorpusRecipe recipe, CorpusOptions options, string folder, IProgress<long>? progress)
    {
        var validation = new ValidationSplit(options);
        SplitCounts trainCounts, validCounts;
        long index = 0;
        using (var train = new SplitWriter(folder, SplitFiles.Train))
        using (var valid = new SplitWriter(folder, SplitFiles.Valid))
        {
            foreach (List<string> chunk in Chunks(documents))
            {
                foreach (IReadOnlyList<int> tokens in Encode(chunk, tokenizer))
                    (validation.Take(index++) ? valid : train).Add(tokens, eos);
                progress?.Report(index);
            }
            trainCounts = train.Complete();
            validCounts = valid.Complete();
        }

        string files = string.Join(", ", recipe.Sources.Select(s => $"'{s.Path}'"));
        if (index == 0) throw new DllmException($"the corpus has no documents: no text found in {files}");
        if (trainCounts.Documents == 0)
            throw new DllmException(
                $"all {index} documents of the corpus ({files}) went to the validation split (validation fraction {options.ValidationFraction}); add data or lower the fraction");

        var manifest = new CorpusManifest(CorpusManifest.CurrentVersion, recipe, eos, trainCounts, validCounts);
        manifest.Write(folder);
        return manifest;
    }

    private static IEnumerable<List<string>> Chunks(IEnumerable<string> documents)
    {
        var chunk = new List<string>(ChunkDocuments);
        long characters = 0;
        foreach (string document in documents)
        {
            chunk.Add(document);
            characters += document.Length;
            if (chunk.Count < ChunkDocuments && characters < ChunkCharacters) continue;
            yield return chunk;
            chunk = new List<string>(ChunkDocuments);
            characters = 0;
        }
        if (chunk.Count > 0) yield return chunk;
    }

    private static IReadOnlyList<int> WithoutTrailingEos(IReadOnlyList<int> tokens, int? eos) =>
        tokens.Count > 0 && tokens[^1] == eos ? tokens.Take(tokens.Count - 1).ToArray() : tokens;

    private static IReadOnlyList<int>[] Encode(List<string> chunk, TextTokenizer tokenizer)
    {
        var encoded = new IReadOnlyList<int>[chunk.Count];
        try
        {
            // TextTokenizer is immutable and thread-safe, so documents of a chunk encode independently.
            // Special tokens as the tokenizer adds them (BOS for Llama-style models, which saw it in
            // pre-training); the EOS that ends every document is appended by the split writer.
            Parallel.For(0, chunk.Count, i => encoded[i] = WithoutTrailingEos(tokenizer.Encode(chunk[i], addSpecialTokens: true), tokenizer.EosId));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return encoded;
    }
}
