using Parquet;
using Parquet.Schema;

namespace Dllm.Data;

/// <summary>
/// Documents of a Parquet file: the values of one top-level string column, read one row group at a time so
/// memory holds a single row group's column. Null and empty values are skipped.
/// </summary>
internal static class ParquetDocuments
{
    public static IEnumerable<string> Read(string path, string column)
    {
        using FileStream stream = CorpusReader.Open(path);
        ParquetReader reader = Guard(path, () => ParquetReader.CreateAsync(stream, leaveStreamOpen: true));
        try
        {
            DataField field = TextColumn(Guard(path, () => Task.FromResult(reader.Schema)), column, path);   // the schema is parsed on first access
            for (int group = 0; group < reader.RowGroupCount; group++)
            {
                foreach (string? value in ReadGroup(reader, group, field, path))
                    if (!string.IsNullOrEmpty(value)) yield return value;
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static string?[] ReadGroup(ParquetReader reader, int group, DataField field, string path)
    {
        using ParquetRowGroupReader rows = reader.OpenRowGroupReader(group);
        var values = new string?[checked((int)rows.RowCount)];
        Guard(path, async () =>
        {
            await rows.ReadAsync(field, values.AsMemory()!, null).ConfigureAwait(false);
            return values;
        });
        return values;
    }

    private static DataField TextColumn(ParquetSchema schema, string column, string path)
    {
        DataField? field = schema.DataFields.FirstOrDefault(f => f.Name == column && f.Path.Length == 1);
        if (field is null)
        {
            string columns = string.Join(", ", schema.DataFields.Select(f => $"'{f.Path}'"));
            throw new DllmException($"corpus file '{path}' has no top-level column '{column}' (columns: {columns})");
        }
        // Parquet.Net 6 reports UTF-8 string columns as ReadOnlyMemory<char>.
        bool isString = field.ClrType == typeof(string) || field.ClrType == typeof(ReadOnlyMemory<char>);
        if (!isString || field.IsArray)
            throw new DllmException($"corpus file '{path}': column '{column}' holds {(field.IsArray ? "lists" : field.ClrType.Name)}, not strings");
        return field;
    }

    /// <summary>
    /// Runs one of Parquet.Net's async calls to completion on the thread pool. This reader is a synchronous
    /// iterator; running the call via Task.Run keeps a caller's synchronisation context out of its continuations,
    /// so blocking here cannot deadlock. Parser failures become errors that name the file.
    /// </summary>
    private static T Guard<T>(string path, Func<Task<T>> read)
    {
        try
        {
            return Task.Run(read).GetAwaiter().GetResult();
        }
        // Parquet.Net's own exceptions include ones outside ParquetException (its Thrift reader's, for a corrupt footer).
        catch (Exception e) when (e is ParquetException or IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException
                                      or IndexOutOfRangeException || e.GetType().Namespace?.StartsWith("Parquet", StringComparison.Ordinal) == true)
        {
            throw new DllmException($"cannot read Parquet corpus file '{path}': {e.Message}", e);
        }
    }
}
