namespace Dllm.Data;

/// <summary>
/// Replaces a cache folder as a whole: the new content is built in a hidden sibling folder (same file system,
/// so the final rename is atomic) and swapped in only when complete. A crash mid-build leaves the old cache (or
/// nothing) in place, never a half-written one. Between moving the old folder aside and renaming the new one in,
/// the path briefly does not exist; a reader then sees "no cache" and rebuilds, which is safe.
/// </summary>
internal static class CacheFolder
{
    /// <summary>Runs <paramref name="build"/> on an empty temp folder, then puts that folder at <paramref name="target"/>.</summary>
    /// <exception cref="DllmException">The target holds something other than a token cache, or the file system refuses.</exception>
    public static void Replace(string target, Action<string> build)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        string parent = Path.GetDirectoryName(full) ?? throw new DllmException($"cannot use the root '{full}' as a token cache folder");
        string name = Path.GetFileName(full);
        EnsureReplaceable(full);
        string temp = Path.Combine(parent, $".{name}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(temp);
            build(temp);
            if (Directory.Exists(full))
            {
                string old = Path.Combine(parent, $".{name}.{Guid.NewGuid():N}.old");
                Directory.Move(full, old);
                Directory.Move(temp, full);
                TryDelete(old);
            }
            else
            {
                Directory.Move(temp, full);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new DllmException($"cannot write the token cache '{full}': {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Refuses to delete a folder we did not make: the cache path might be mistyped as a data or home folder.</summary>
    private static void EnsureReplaceable(string folder)
    {
        if (File.Exists(folder)) throw new DllmException($"token cache path '{folder}' is a file, not a folder");
        if (!Directory.Exists(folder) || !Directory.EnumerateFileSystemEntries(folder).Any()) return;
        if (!CorpusManifest.Exists(folder))
            throw new DllmException($"token cache folder '{folder}' is not empty and holds no {CorpusManifest.FileName}; refusing to replace it (choose an empty or new folder)");
    }

    private static void TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover hidden folder is harmless; the error that brought us here matters more.
        }
    }
}
