namespace Dllm.Data;

/// <summary>File names of a split in a cache folder, in one place for the writer and the reader.</summary>
internal static class SplitFiles
{
    public const string Train = "train", Valid = "valid";

    public static string Tokens(string folder, string split) => Path.Combine(folder, split + ".tokens");

    public static string Documents(string folder, string split) => Path.Combine(folder, split + ".docs");
}
