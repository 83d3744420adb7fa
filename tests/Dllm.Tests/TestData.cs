namespace Dllm.Tests;

/// <summary>
/// Locates the repository and the shared test assets (../shared/data: stories260K, TinyStories, ...).
/// Tests that need the assets return early with a message when they are absent, so the suite still
/// runs on a bare checkout.
/// </summary>
public static class TestData
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>
    /// $DLLM_SHARED_DATA if set; otherwise shared/data beside the repository root, looking one level
    /// further up at a time so git worktrees nested below the main checkout's parent find it too.
    /// </summary>
    public static string? SharedData { get; } = Locate();

    /// <summary>The message a test writes when it skips for lack of shared data.</summary>
    public const string MissingMessage = "SKIPPED: shared test data not found (set DLLM_SHARED_DATA or place it at ../shared/data beside the repo)";

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
