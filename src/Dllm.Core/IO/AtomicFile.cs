using System.Text;

namespace Dllm.IO;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one, never a
/// torn file: write a temp file in the same folder (rename is atomic only within a file system),
/// fsync it, then rename it over the target. On any failure the temp file is removed and the
/// target is left as it was.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var (target, temp, stream) = Begin(path);
        try
        {
            stream.Write(bytes);
            Commit(stream, temp, target);
        }
        catch (Exception e)
        {
            Abandon(stream, temp);
            if (e is IOException or UnauthorizedAccessException) throw new DllmException($"writing '{target}' failed: {e.Message}", e);
            throw;
        }
    }

    /// <summary>Runs <paramref name="write"/> on a stream to the temp file; it must not close the stream.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var (target, temp, stream) = Begin(path);
        try
        {
            write(stream);
            Commit(stream, temp, target);
        }
        catch (Exception e)
        {
            Abandon(stream, temp);
            if (e is IOException or UnauthorizedAccessException) throw new DllmException($"writing '{target}' failed: {e.Message}", e);
            throw;
        }
    }

    private static (string Target, string Temp, FileStream Stream) Begin(string path)
    {
        var target = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(target) ?? throw new DllmException($"cannot write '{target}': it is not a file path");
        // Dot prefix and .tmp suffix: hidden, and never mistaken for a checkpoint by a *.safetensors scan.
        var temp = Path.Combine(folder, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        try
        {
            return (target, temp, new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DllmException($"cannot write '{target}': {e.Message}", e);
        }
    }

    private static void Commit(FileStream stream, string temp, string target)
    {
        // Flush to disk before the rename, or a crash could leave the new name on empty blocks.
        stream.Flush(flushToDisk: true);
        stream.Dispose();
        File.Move(temp, target, overwrite: true);
    }

    /// <summary>Closes and removes the temp file, leaving the target untouched.</summary>
    private static void Abandon(FileStream stream, string temp)
    {
        try
        {
            stream.Dispose();
        }
        catch (IOException)
        {
            // Disposing flushes the buffer, which fails again on a full disk; the first error is the one to report.
        }
        try
        {
            File.Delete(temp);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original error matters more than a leftover temp file.
        }
    }
}
