namespace Dllm.Data;

/// <summary>
/// How a corpus is split and read. <paramref name="ValidationFraction"/> is the chance that a document is held
/// out (decided per document from <paramref name="Seed"/>), up to <paramref name="MaxValidationDocuments"/> documents.
/// </summary>
public sealed record CorpusOptions(double ValidationFraction = 0.02, long Seed = 0, int MaxValidationDocuments = 2000)
{
    /// <summary>The JSON Lines field or Parquet column holding the text.</summary>
    public string TextField { get; init; } = "text";

    /// <exception cref="DllmException">An option is out of range.</exception>
    public void Validate()
    {
        if (!(ValidationFraction is >= 0 and <= 1))
            throw new DllmException($"validation fraction {ValidationFraction} is not between 0 and 1");
        if (MaxValidationDocuments < 0)
            throw new DllmException($"max validation documents {MaxValidationDocuments} is negative");
        if (string.IsNullOrWhiteSpace(TextField))
            throw new DllmException("the corpus text field name is empty");
    }
}
