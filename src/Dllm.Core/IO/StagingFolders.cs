using System.Diagnostics;

namespace Dllm.IO;

/// <summary>
/// What an interrupted folder save leaves beside its target. ModelSaver builds a checkpoint in
/// ".NAME.saving-PID-GUID" and renames it to NAME; replacing an old NAME parks it as "NAME.old-GUID" for
/// a moment. A kill -9 at the wrong time leaves either behind, so runs sweep them when they start.
/// </summary>
public static class StagingFolders
{
    private const string Saving = ".saving-";
    private const string Old = ".old-";

    /// <summary>True for a staging folder whose writing process is gone, or a parked old copy.</summary>
    public static bool IsAbandoned(string folderName)
    {
        if (folderName.Contains(Old, StringComparison.Ordinal)) return true;
        var at = folderName.IndexOf(Saving, StringComparison.Ordinal);
        if (!folderName.StartsWith('.') || at < 0) return false;
        var rest = folderName[(at + Saving.Length)..];
        var dash = rest.IndexOf('-');
        return !int.TryParse(dash < 0 ? rest : rest[..dash], out var pid) || !IsRunning(pid);
    }

    /// <summary>Removes the abandoned staging folders of <paramref name="target"/> (a folder path) and returns their names.</summary>
    public static IReadOnlyList<string> SweepFor(string target)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        var parent = Path.GetDirectoryName(full);
        var name = Path.GetFileName(full);
        if (parent is null || !Directory.Exists(parent)) return [];
        var removed = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories(parent))
        {
            var entry = Path.GetFileName(dir);
            var mine = entry.StartsWith($".{name}{Saving}", StringComparison.Ordinal) || entry.StartsWith($"{name}{Old}", StringComparison.Ordinal);
            if (!mine || !IsAbandoned(entry)) continue;
            Directory.Delete(dir, recursive: true);
            removed.Add(entry);
        }
        return removed;
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;   // a save of this process still under way
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
