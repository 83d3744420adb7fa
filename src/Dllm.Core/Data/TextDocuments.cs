using System.Text;

namespace Dllm.Data;

/// <summary>
/// Documents of a plain-text file, in one of two layouts:
/// <list type="bullet">
/// <item>Separated: some line is exactly <c>&lt;|endoftext|&gt;</c> (after trimming), as in TinyStories. Documents are the
/// chunks between such lines, without their leading and trailing blank lines; inner newlines are kept (as "\n").</item>
/// <item>Otherwise one document per line; blank (whitespace-only) lines are skipped.</item>
/// </list>
/// The layout is decided by a first streaming pass that stops at the first separator line. A separated file
/// therefore costs only its first chunk extra, and a line-per-document file one extra sequential read; unlike a
/// bounded look-ahead, this never misreads a file whose first separator comes late.
/// </summary>
internal static class TextDocuments
{
    public const string Separator = "<|endoftext|>";

    public static IEnumerable<string> Read(string path) =>
        HasSeparatorLine(path) ? Chunks(path) : Lines(path);

    private static bool HasSeparatorLine(string path)
    {
        using var reader = OpenText(path);
        while (reader.ReadLine() is string line)
            if (IsSeparator(line)) return true;
        return false;
    }

    private static IEnumerable<string> Lines(string path)
    {
        using var reader = OpenText(path);
        while (reader.ReadLine() is string line)
            if (!string.IsNullOrWhiteSpace(line)) yield return line;
    }

    private static IEnumerable<string> Chunks(string path)
    {
        using var reader = OpenText(path);
        var lines = new List<string>();
        while (reader.ReadLine() is string line)
        {
            if (!IsSeparator(line))
            {
                lines.Add(line);
                continue;
            }
            if (Join(lines) is string document) yield return document;
            lines.Clear();
        }
        if (Join(lines) is string last) yield return last;
    }

    /// <summary>The lines without leading and trailing blank ones, joined by "\n"; null if nothing is left.</summary>
    private static string? Join(List<string> lines)
    {
        int first = lines.FindIndex(line => !string.IsNullOrWhiteSpace(line));
        if (first < 0) return null;
        int last = lines.FindLastIndex(line => !string.IsNullOrWhiteSpace(line));
        var text = new StringBuilder();
        for (int i = first; i <= last; i++)
        {
            if (i > first) text.Append('\n');
            text.Append(lines[i]);
        }
        return text.ToString();
    }

    private static bool IsSeparator(string line) => line.AsSpan().Trim().SequenceEqual(Separator);

    private static StreamReader OpenText(string path) =>
        new(CorpusReader.Open(path), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), detectEncodingFromByteOrderMarks: true);
}
