namespace Dllm.Tests.IO;

/// <summary>A fresh temp folder per test, removed afterwards.</summary>
internal sealed class TestDir : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("dllm-io-").FullName;

    public string File(string name) => Path.Combine(Root, name);

    public string Sub(string name) => Directory.CreateDirectory(Path.Combine(Root, name)).FullName;

    /// <summary>File names directly in <paramref name="folder"/> (default: the root), sorted.</summary>
    public string[] List(string? folder = null) =>
        Directory.GetFiles(folder ?? Root).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToArray();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A still-mapped file on some platforms; the OS temp cleaner will get it.
        }
    }
}
