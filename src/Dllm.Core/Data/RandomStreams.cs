namespace Dllm.Data;

/// <summary>Stream ids for <see cref="SeededRandom.Hash"/>; changing one changes every split or order made with it.</summary>
internal static class RandomStreams
{
    public const ulong Validation = 1;
    public const ulong EpochOrder = 2;
    public const ulong BatchOrder = 3;
}
