using Dllm.Data;
using Parquet;
using Parquet.Schema;

namespace Dllm.Tests.Data;

public class CorpusReaderTests
{
    [Fact]
    public void Text_with_separator_lines_yields_the_chunks_between_them()
    {
        using var dir = new TempDirectory();
        string path = dir.File("stories.txt");
        File.WriteAllText(path,
            "\n\nFirst story.\nIts second line.\n\n<|endoftext|>\n" +
            "  <|endoftext|>  \n" +                                   // separator with spaces; empty chunk before it
            "\n Second story, leading space kept.\n\n  middle blank line kept\n<|endoftext|>\n" +
            "Third story without a final separator.\n");

        string[] documents = [.. CorpusReader.ReadDocuments([path])];

        Assert.Equal(
        [
            "First story.\nIts second line.",
            " Second story, leading space kept.\n\n  middle blank line kept",
            "Third story without a final separator.",
        ], documents);
    }

    [Fact]
    public void Text_separator_far_down_the_file_still_selects_the_chunk_layout()
    {
        using var dir = new TempDirectory();
        string path = dir.File("late.txt");
        var lines = Enumerable.Range(0, 5000).Select(i => $"line {i}").ToList();
        lines.Add("<|endoftext|>");
        lines.Add("tail");
        File.WriteAllLines(path, lines);

        string[] documents = [.. CorpusReader.ReadDocuments([path])];

        Assert.Equal(2, documents.Length);
        Assert.Equal(string.Join("\n", lines.Take(5000)), documents[0]);
        Assert.Equal("tail", documents[1]);
    }

    [Fact]
    public void Text_without_separator_lines_yields_one_document_per_non_blank_line()
    {
        using var dir = new TempDirectory();
        string path = dir.File("lines.md");
        // The separator inside a line is text, not a separator; CRLF endings are not part of a document.
        File.WriteAllText(path, "alpha\r\n\r\n   \r\n beta gamma \r\nin <|endoftext|> line\nlast");

        Assert.Equal(["alpha", " beta gamma ", "in <|endoftext|> line", "last"], CorpusReader.ReadDocuments([path]));
    }

    [Fact]
    public void Jsonl_reads_the_named_field_and_skips_blank_lines_and_null_or_empty_values()
    {
        using var dir = new TempDirectory();
        string path = dir.File("data.jsonl");
        File.WriteAllText(path,
            """
            {"body": "one", "text": "not this field"}

            {"id": 2, "body": "two\nlines \u00e9"}
            {"body": null}
            {"body": ""}
              {"body": "three"}  
            """);

        Assert.Equal(["one", "two\nlines é", "three"], CorpusReader.ReadDocuments([path], field: "body"));
    }

    [Fact]
    public async Task Parquet_reads_the_named_column_across_row_groups_and_skips_nulls()
    {
        using var dir = new TempDirectory();
        string path = dir.File("data.parquet");
        await WriteParquet(path, "content", [["a", null, "b\nc"], ["", "d"], []]);

        Assert.Equal(["a", "b\nc", "d"], CorpusReader.ReadDocuments([path], field: "content"));
    }

    [Fact]
    public async Task Parquet_without_the_column_is_an_error_listing_the_columns()
    {
        using var dir = new TempDirectory();
        string path = dir.File("data.parquet");
        await WriteParquet(path, "content", [["a"]]);

        var error = Assert.Throws<DllmException>(() => CorpusReader.ReadDocuments([path]).ToList());

        Assert.Contains(path, error.Message);
        Assert.Contains("'text'", error.Message);
        Assert.Contains("content", error.Message);
    }

    [Fact]
    public async Task Parquet_footer_that_is_not_wellformed_thrift_is_refused_before_the_parquet_library_reads_it()
    {
        using var dir = new TempDirectory();
        string path = dir.File("data.parquet");
        await WriteParquet(path, "text", [["a", "b"]]);
        byte[] good = File.ReadAllBytes(path);
        int footer = BitConverter.ToInt32(good, good.Length - 8);

        byte[] unknownType = (byte[])good.Clone();
        unknownType[good.Length - 8 - footer] = 0x1E;   // the first field header: field 1, type 14 (no such Thrift type)
        byte[] longFooter = (byte[])good.Clone();
        BitConverter.GetBytes(good.Length).CopyTo(longFooter, good.Length - 8);
        // Found by fuzzing: Parquet.Net's field skipper spins forever on these footers (the second asks for billions of
        // booleans, which it skips without reading a byte).
        byte[] Kept(string name) => File.ReadAllBytes(Path.Combine(TestData.RepoRoot, "fuzz", "regressions", "parquet-corpus", name));

        foreach (var (bytes, problem) in new[] { (unknownType, "wire type 14"), (longFooter, "does not fit"),
                     (Kept("hang-thrift-skip.parquet"), "not valid Thrift"), (Kept("hang-bool-list.parquet"), "not valid Thrift") })
        {
            File.WriteAllBytes(path, bytes);
            var read = Task.Run(() => Assert.Throws<DllmException>(() => CorpusReader.ReadDocuments([path]).ToList()));
            Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(30))) == read, $"'{problem}' did not finish");
            var error = await read;
            Assert.Contains(path, error.Message);
            Assert.Contains(problem, error.Message);
        }
        File.WriteAllBytes(path, good);
        Assert.Equal(["a", "b"], CorpusReader.ReadDocuments([path]));
    }

    [Fact]
    public void Files_are_read_in_the_order_given_and_explicit_format_overrides_the_extension()
    {
        using var dir = new TempDirectory();
        string lines = dir.File("a.txt"), json = dir.File("b.data");
        File.WriteAllLines(lines, ["t1", "t2"]);
        File.WriteAllLines(json, ["""{"text": "j1"}"""]);

        Assert.Equal(["j1"], CorpusReader.ReadDocuments([json], CorpusFormat.Jsonl));
        var error = Assert.Throws<DllmException>(() => CorpusReader.ReadDocuments([lines, json]));
        Assert.Contains(json, error.Message);
        Assert.Contains(".data", error.Message);

        File.Move(json, dir.File("b.ndjson"));
        Assert.Equal(["j1", "t1", "t2"], CorpusReader.ReadDocuments([dir.File("b.ndjson"), lines]));
    }

    [Fact]
    public void Missing_file_fails_before_enumeration_and_names_the_file()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("present.txt"), "x");
        string missing = dir.File("absent.jsonl");

        var error = Assert.Throws<DllmException>(() => CorpusReader.ReadDocuments([dir.File("present.txt"), missing]));

        Assert.Contains(missing, error.Message);
        Assert.Contains("does not exist", error.Message);
    }

    [Theory]
    [InlineData("{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"text\": oops}\n", "line 3", "not valid JSON")]
    [InlineData("{\"text\": \"ok\"}\n\n[\"text\"]\n", "line 3", "expected a JSON object, found an array")]
    [InlineData("{\"body\": \"ok\"}\n", "line 1", "no field 'text' (the object has 'body')")]
    [InlineData("{\"text\": 42}\n", "line 1", "field 'text' is a number, not a string")]
    public void Malformed_jsonl_line_is_an_error_naming_file_and_line(string content, string line, string problem)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.jsonl");
        File.WriteAllText(path, content);

        var error = Assert.Throws<DllmException>(() => CorpusReader.ReadDocuments([path]).ToList());

        Assert.Contains($"'{path}' {line}:", error.Message);
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void Reading_is_lazy_documents_before_a_malformed_line_arrive_without_error()
    {
        using var dir = new TempDirectory();
        string path = dir.File("late-error.jsonl");
        File.WriteAllLines(path, ["""{"text": "1"}""", """{"text": "2"}""", """{"text": "3"}""", "not json"]);

        Assert.Equal(["1", "2", "3"], CorpusReader.ReadDocuments([path]).Take(3));
        Assert.Throws<DllmException>(() => CorpusReader.ReadDocuments([path]).ToList());
    }

    [Theory]
    [InlineData("big.jsonl")]
    [InlineData("big.txt")]
    public void Reading_streams_the_file_truncating_it_mid_read_cuts_the_documents_short(string name)
    {
        using var dir = new TempDirectory();
        string path = dir.File(name);
        const int total = 20_000; // about 1 MB, far beyond any read buffer
        string Document(int i) => $"document {i} " + new string('x', 40);
        File.WriteAllLines(path, name.EndsWith(".jsonl")
            ? Enumerable.Range(0, total).Select(i => $$"""{"text": "{{Document(i)}}"}""")
            : Enumerable.Range(0, total).SelectMany(i => new[] { Document(i), "<|endoftext|>" }));

        using IEnumerator<string> documents = CorpusReader.ReadDocuments([path]).GetEnumerator();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(documents.MoveNext());
            Assert.Equal(Document(i), documents.Current);
        }
        // A reader that had loaded the file would still produce every document after this.
        using (new FileStream(path, FileMode.Truncate, FileAccess.Write, FileShare.ReadWrite)) { }
        int rest = 0;
        try
        {
            while (documents.MoveNext()) rest++;
        }
        catch (DllmException e) when (name.EndsWith(".jsonl"))
        {
            // Expected too: the read buffer ends inside a line, which the truncation left half-written.
            Assert.Contains("not valid JSON", e.Message);
        }

        Assert.True(3 + rest < total / 10, $"read {3 + rest} of {total} documents after truncation");
    }

    internal static async Task WriteParquet(string path, string column, string?[][] rowGroups)
    {
        var text = new DataField<string>(column);
        var number = new DataField<int>("n");
        await using FileStream stream = File.Create(path);
        await using ParquetWriter writer = await ParquetWriter.CreateAsync(new ParquetSchema(text, number), stream);
        foreach (string?[] rows in rowGroups)
        {
            using ParquetRowGroupWriter group = writer.CreateRowGroup();
            await group.WriteAsync(text, rows);
            await group.WriteAsync<int>(number, Enumerable.Range(0, rows.Length).ToArray().AsMemory());
        }
    }
}
