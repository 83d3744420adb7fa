namespace Dllm.Data;

/// <summary>How a corpus file is laid out; <see cref="Auto"/> picks by file extension (see <see cref="CorpusReader"/>).</summary>
public enum CorpusFormat
{
    Auto,
    Text,
    Jsonl,
    Parquet,
}
