namespace Dllm.Data;

/// <summary>
/// Chooses held-out documents. Each document is drawn independently from (seed, document index), so the choice
/// does not depend on how the corpus is read or rebuilt, and documents appended to the last file never move
/// earlier ones. The cap keeps the first <see cref="CorpusOptions.MaxValidationDocuments"/> drawn documents.
/// </summary>
internal sealed class ValidationSplit
{
    private readonly CorpusOptions _options;

    public ValidationSplit(CorpusOptions options) => _options = options;

    public long Chosen { get; private set; }

    /// <summary>Whether document <paramref name="index"/> (counted over all files, from 0) goes to validation; call once per document, in order.</summary>
    public bool Take(long index)
    {
        if (Chosen >= _options.MaxValidationDocuments) return false;
        double u = SeededRandom.UnitInterval(SeededRandom.Hash(RandomStreams.Validation, (ulong)_options.Seed, (ulong)index));
        if (u >= _options.ValidationFraction) return false;
        Chosen++;
        return true;
    }
}
