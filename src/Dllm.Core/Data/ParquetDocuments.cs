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
        ThriftFooter.Check(stream, path);
        ParquetReader reader = Guard(path, () => ParquetReader.CreateAsync(stream, leaveStreamOpen: true));
        try
        {
            DataField field = TextColumn(Guard(path, () => Task.FromResult(reader.Schema)), column, path);   // the schema is parsed on first access
            for (int group = 0; group < reader.RowGroupCount; group++)
            {
                foreach (string? value in ReadGroup(reader, group, field, path, stream.Length))
                    if (!string.IsNullOrEmpty(value)) yield return value;
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static string?[] ReadGroup(ParquetReader reader, int group, DataField field, string path, long fileBytes)
    {
        using ParquetRowGroupReader rows = reader.OpenRowGroupReader(group);
        // The count comes from the footer and sizes an array before any value is read: a corrupt one must not become
        // an overflow or a huge allocation. Run-length encoding lets rows outnumber bytes, but not by a thousand to one
        // in any corpus.
        if (rows.RowCount < 0 || rows.RowCount > Math.Min(Array.MaxLength, 1024 * fileBytes))
            throw Corrupt(path, $"row group {group} claims {rows.RowCount} rows in a {fileBytes}-byte file");
        var values = new string?[rows.RowCount];
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

    /// <summary>The one-line error for a Parquet file that cannot be read, whichever check found it.</summary>
    internal static DllmException Corrupt(string path, string why, Exception? inner = null)
    {
        string message = $"cannot read Parquet corpus file '{path}': {why}";
        return inner is null ? new DllmException(message) : new DllmException(message, inner);
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
        // Parquet.Net's own exceptions include ones outside ParquetException (its Thrift reader's, for a corrupt footer),
        // and plain runtime ones thrown inside its code (a NullReferenceException for a column chunk without metadata).
        catch (Exception e) when (e is ParquetException or IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException
                                      or IndexOutOfRangeException || e.GetType().Namespace?.StartsWith("Parquet", StringComparison.Ordinal) == true
                                  || e.TargetSite?.DeclaringType?.Namespace?.StartsWith("Parquet", StringComparison.Ordinal) == true)
        {
            throw Corrupt(path, e.Message, e);
        }
    }
}

/// <summary>
/// A bounded walk over a Parquet file's footer (Thrift compact protocol) before Parquet.Net parses it. Parquet.Net 6.1's
/// field skipper spins forever on some corrupt footers (found by fuzzing: a few flipped bytes in a valid file), and a
/// loop inside a library cannot be stopped from outside, so such a footer must never reach it. The walk reads no
/// meaning, only structure, and skips as the library skips: a boolean element of a list takes no byte there (the
/// Thrift spec gives it one), which is how a footer of a few kilobytes can ask for two billion iterations. So: every
/// value inside the footer, every count no larger than the bytes left, at most <see cref="MaxValuesPerByte"/> values
/// per footer byte in all, nesting at most <see cref="MaxDepth"/> deep, known types only, and the fields of the structs
/// the library parses (FileMetaData, SchemaElement, RowGroup, ColumnChunk, ColumnMetaData, Statistics, KeyValue,
/// SortingColumn, PageEncodingStats) on their declared wire types, list elements included: the library reads a known
/// field as declared, whatever the wire says, and such a misread shifts it into the loop (fuzzing found it at the top
/// level first, then inside Statistics). Other structs (unions such as LogicalType) are walked generically.
/// </summary>
internal static class ThriftFooter
{
    private const int MaxDepth = 64;
    private const int MaxValuesPerByte = 8;
    private static ReadOnlySpan<byte> Magic => "PAR1"u8;

    /// <exception cref="DllmException">The file is too short, lacks the magic, or its footer is not well-formed Thrift.</exception>
    public static void Check(FileStream stream, string path)
    {
        long length = stream.Length;
        Span<byte> tail = stackalloc byte[8];
        if (length < 12) throw ParquetDocuments.Corrupt(path, $"{length} bytes is too short for a Parquet file");
        stream.Seek(-8, SeekOrigin.End);
        stream.ReadExactly(tail);
        if (!tail[4..].SequenceEqual(Magic)) throw ParquetDocuments.Corrupt(path, "it does not end with PAR1");
        long footer = BitConverter.ToInt32(tail[..4]);   // little-endian on every platform .NET runs dllm on
        if (footer <= 0 || footer > length - 12) throw ParquetDocuments.Corrupt(path, $"footer length {footer} does not fit a {length}-byte file");
        var bytes = new byte[footer];
        stream.Seek(length - 8 - footer, SeekOrigin.Begin);
        stream.ReadExactly(bytes);
        stream.Seek(0, SeekOrigin.Begin);
        try
        {
            var walk = new Walk(bytes, Budget: MaxValuesPerByte * (long)bytes.Length + 1024);
            walk.SkipStruct(depth: 0, FooterShapes.FileMetaData);
        }
        catch (FormatException e)
        {
            throw ParquetDocuments.Corrupt(path, $"its footer is not valid Thrift ({e.Message})");
        }
    }


    private sealed record Walk(byte[] B, long Budget)
    {
        private int _at;
        private long _values;

        public void SkipStruct(int depth, Shape? shape)
        {
            if (depth > MaxDepth) throw new FormatException($"nested deeper than {MaxDepth}");
            long field = 0;
            while (true)
            {
                byte header = Next();
                if (header == 0) return;   // STOP
                // The field id: a delta in the header, or a zigzag varint after it.
                if (header >> 4 == 0)
                {
                    long zigzag = Varint();
                    field = (zigzag >>> 1) ^ -(zigzag & 1);
                }
                else field += header >> 4;
                // Parquet.Net reads a known field as its declared type whatever the wire says, and a misread there
                // shifts everything after it: the wire type must be the declared one.
                var wire = header & 0x0F;
                var declared = shape is not null && field >= 1 && field <= shape.Fields.Length ? shape.Fields[field - 1] : default;
                if (declared.Type != 0 && !Matches(declared.Type, wire))
                    throw new FormatException($"{shape!.Name} field {field} has wire type {wire}, not {declared.Type}");
                SkipValue(wire, depth, declared);
            }
        }

        /// <summary>Booleans carry their value in the wire type (1 true, 2 false); every other type is itself.</summary>
        private static bool Matches(int declared, int wire) => declared == 1 ? wire is 1 or 2 : wire == declared;

        private void SkipValue(int type, int depth, FieldShape declared = default)
        {
            if (++_values > Budget) throw new FormatException($"more than {Budget} values in {B.Length} bytes");
            switch (type)
            {
                case 1 or 2: return;   // booleans: in the field header, and (as Parquet.Net skips them) no byte in a list
                case 3: Take(1); return;
                case 4 or 5 or 6: Varint(); return;
                case 7: Take(8); return;
                case 8: Take(Count(Varint())); return;
                case 13: Take(16); return;   // UUID, which Parquet.Net knows
                case 9 or 10:
                {
                    byte header = Next();
                    long size = header >> 4 == 15 ? Varint() : header >> 4;
                    var element = header & 0x0F;
                    if (declared.Element != 0 && size > 0 && !Matches(declared.Element, element))
                        throw new FormatException($"a list at byte {_at} holds wire type {element}, not {declared.Element}");
                    for (long i = Count(size); i > 0; i--) SkipValue(element, depth + 1, new FieldShape(declared.Element, Struct: declared.Struct));
                    return;
                }
                case 11:
                {
                    int count = Count(Varint());
                    if (count == 0) return;
                    byte types = Next();
                    for (int i = 0; i < count; i++)
                    {
                        SkipValue(types >> 4, depth + 1);
                        SkipValue(types & 0x0F, depth + 1);
                    }
                    return;
                }
                case 12: SkipStruct(depth + 1, declared.Struct); return;
                default: throw new FormatException($"unknown type {type} at byte {_at}");
            }
        }

        /// <summary>A count of elements or bytes: never more than the bytes left.</summary>
        private int Count(long size) =>
            size >= 0 && size <= B.Length - _at ? (int)size : throw new FormatException($"count {size} at byte {_at} exceeds the {B.Length - _at} bytes left");

        private void Take(int n)
        {
            if (n > B.Length - _at) throw new FormatException($"value at byte {_at} runs past the footer's end");
            _at += n;
        }

        private byte Next() => _at < B.Length ? B[_at++] : throw new FormatException("the footer ends inside a value");

        private long Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte next = Next();
                value |= (ulong)(next & 0x7F) << shift;
                if ((next & 0x80) == 0) return (long)value;   // unsigned (sizes); zigzag integers are only skipped, never read
            }
            throw new FormatException($"varint longer than 10 bytes at byte {_at}");
        }
    }

    /// <summary>One field of a struct the library parses: its wire type (0: not checked), a list's element type, and the shape of a struct (or of a list's struct elements).</summary>
    private readonly record struct FieldShape(int Type, int Element = 0, Shape? Struct = null);

    /// <summary>A struct's fields by id (index = id - 1).</summary>
    private sealed record Shape(string Name, FieldShape[] Fields);

    /// <summary>
    /// parquet.thrift's structs as Parquet.Net reads them. Compact wire types: 1 bool, 3 byte, 4 i16, 5 i32 (and
    /// enums), 6 i64, 7 double, 8 binary/string, 9 list, 10 set, 11 map, 12 struct. Only fields whose types are certain
    /// are listed; later fields of a struct are walked generically.
    /// </summary>
    private static class FooterShapes
    {
        private static FieldShape I32 => new(5);
        private static FieldShape I64 => new(6);
        private static FieldShape Binary => new(8);
        private static FieldShape Bool => new(1);
        private static FieldShape ListOf(int element, Shape? shape = null) => new(9, element, shape);

        private static readonly Shape KeyValue = new("KeyValue", [Binary, Binary]);
        private static readonly Shape SortingColumn = new("SortingColumn", [I32, Bool, Bool]);
        private static readonly Shape PageEncodingStats = new("PageEncodingStats", [I32, I32, I32]);
        private static readonly Shape Statistics = new("Statistics", [Binary, Binary, I64, I64, Binary, Binary, Bool, Bool]);

        private static readonly Shape ColumnMetaData = new("ColumnMetaData",
        [
            I32, ListOf(5), ListOf(8), I32, I64, I64, I64, ListOf(12, KeyValue), I64, I64, I64, new(12, Struct: Statistics),
            ListOf(12, PageEncodingStats),
        ]);

        private static readonly Shape ColumnChunk = new("ColumnChunk", [Binary, I64, new(12, Struct: ColumnMetaData), I64, I32, I64, I32]);
        private static readonly Shape RowGroup = new("RowGroup", [ListOf(12, ColumnChunk), I64, I64, ListOf(12, SortingColumn), I64, I64, new(4)]);
        private static readonly Shape SchemaElement = new("SchemaElement", [I32, I32, I32, Binary, I32, I32, I32, I32, I32, new(12)]);

        public static readonly Shape FileMetaData = new("FileMetaData",
        [
            I32, ListOf(12, SchemaElement), I64, ListOf(12, RowGroup), ListOf(12, KeyValue), Binary, ListOf(12), new(12), Binary,
        ]);
    }
}
