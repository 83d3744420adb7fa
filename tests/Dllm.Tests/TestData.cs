namespace Dllm.Tests;

/// <summary>
/// Locates the repository and the shared test assets (../shared/data: stories260K, TinyStories, ...).
/// Tests that need the assets are marked <see cref="SharedDataFactAttribute"/>: on a bare checkout they
/// show as skipped, naming the missing file, and never pass silently.
/// </summary>
public static class TestData
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>
    /// $DLLM_SHARED_DATA if set; otherwise shared/data beside the repository root, looking one level
    /// further up at a time so git worktrees nested below the main checkout's parent find it too.
    /// </summary>
    public static string? SharedData { get; } = Locate();

    /// <summary>Why a test needing these files (relative to the shared data folder) cannot run; null when all are there.</summary>
    public static string? Missing(params string[] files)
    {
        if (SharedData is null) return "shared test data not found: set DLLM_SHARED_DATA or place it at ../shared/data beside the repo";
        var absent = files.FirstOrDefault(f => !File.Exists(Path.Combine(SharedData, f)));
        return absent is null ? null : $"shared test data has no {absent} (in {SharedData})";
    }

    /// <summary>The full path of a file in the shared data folder (tests marked with <see cref="SharedDataFactAttribute"/> only).</summary>
    public static string Shared(string file) => Path.Combine(SharedData ?? throw new InvalidOperationException("no shared data"), file);

    private static string? Locate()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("DLLM_SHARED_DATA");
        if (!string.IsNullOrEmpty(fromEnvironment))
            return Directory.Exists(fromEnvironment) ? Path.GetFullPath(fromEnvironment) : null;
        for (var dir = new DirectoryInfo(RepoRoot).Parent; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "dllm.slnx"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (dllm.slnx) above " + AppContext.BaseDirectory);
    }
}

/// <summary>A fact that needs these files under ../shared/data; reported as skipped, with the reason, when one is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(params string[] files) => Skip = TestData.Missing(files);
}
