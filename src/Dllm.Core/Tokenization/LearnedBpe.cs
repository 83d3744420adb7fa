namespace Dllm.Tokenization;

/// <summary>
/// The result of BPE training, in byte-level spelling ("Ġthe"): tokens by id (the 256 bytes in byte order,
/// then one per distinct merge result) and the merges in the order they were learned, which is their rank.
/// </summary>
internal sealed record LearnedBpe(IReadOnlyList<string> Tokens, IReadOnlyList<(string Left, string Right)> Merges);
