namespace Dllm.Tests;

/// <summary>Locates the repository and the shared data folder (../shared/data) for tests.</summary>
public static class TestData
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared/data next to the repository, or $DLLM_SHARED_DATA; null when absent.</summary>
    public static string? SharedData
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("DLLM_SHARED_DATA");
            if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
            var candidate = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));
            return Directory.Exists(candidate) ? candidate : null;
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "dllm.slnx"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (dllm.slnx) above " + AppContext.BaseDirectory);
    }
}
