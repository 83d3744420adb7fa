namespace Dllm.Tests;

/// <summary>
/// Finds the shared test assets (/work/shared/data: stories260K, TinyStories, ...). Tests that need them
/// return early with a message when they are absent, so the suite still runs on a bare checkout.
/// </summary>
public static class TestData
{
    /// <summary>
    /// $DLLM_SHARED_DATA if set; otherwise shared/data beside the repository root (the folder holding
    /// dllm.slnx), looking one level further up at a time so git worktrees nested below the main
    /// checkout's parent find it too. Null when not found.
    /// </summary>
    public static string? SharedData { get; } = Locate();

    /// <summary>The message a test writes when it skips for lack of shared data.</summary>
    public const string MissingMessage = "SKIPPED: shared test data not found (set DLLM_SHARED_DATA or place it at ../shared/data beside the repo)";

    private static string? Locate()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("DLLM_SHARED_DATA");
        if (!string.IsNullOrEmpty(fromEnvironment))
            return Directory.Exists(fromEnvironment) ? Path.GetFullPath(fromEnvironment) : null;

        DirectoryInfo? repoRoot = new DirectoryInfo(AppContext.BaseDirectory);
        while (repoRoot is not null && !File.Exists(Path.Combine(repoRoot.FullName, "dllm.slnx"))) repoRoot = repoRoot.Parent;
        for (DirectoryInfo? dir = repoRoot?.Parent; dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
