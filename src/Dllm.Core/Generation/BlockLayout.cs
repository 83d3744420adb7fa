namespace Dllm.Generation;

/// <summary>
/// How prompts map onto blocks: each prompt's full blocks (prefilled, left-padded to a common width
/// <see cref="PrefillWidth"/>) and its tail (the fixed start of its first generation window).
/// </summary>
internal sealed record BlockLayout(int BlockSize, int PrefillWidth, int[][] Prefill, bool[][] PrefillValid, long[][] PrefillPositions,
    int[][] Tails, int[] FirstWindowStart, int MaxNewTokens)
{
    /// <summary>The context positions blocks can fill: the last block must end inside the context.</summary>
    public static int UsableContext(int context, int b) => context / b * b;

    public static BlockLayout Create(IReadOnlyList<IReadOnlyList<int>> prompts, int b, int maxNewTokens, int context, int padId)
    {
        if (prompts.Count == 0) throw new DllmException("no prompts to decode");
        var usable = UsableContext(context, b);
        var longest = prompts.Max(p => p.Count);
        var room = usable - longest;
        if (room <= 0)
            throw new DllmException($"the prompt has {longest} tokens but the model's context is {context} ({usable} usable with block size {b}); shorten it to leave room for at least one block");
        var full = prompts.Select(p => p.Count / b * b).ToArray();
        var width = full.Max();
        var prefill = new int[prompts.Count][];
        var valid = new bool[prompts.Count][];
        var positions = new long[prompts.Count][];
        for (var i = 0; i < prompts.Count; i++)
        {
            var pad = width - full[i];
            prefill[i] = Enumerable.Range(0, width).Select(c => c < pad ? padId : prompts[i][c - pad]).ToArray();
            valid[i] = Enumerable.Range(0, width).Select(c => c >= pad).ToArray();
            positions[i] = Enumerable.Range(0, width).Select(c => (long)Math.Max(0, c - pad)).ToArray();
        }
        var tails = prompts.Select((p, i) => p.Skip(full[i]).ToArray()).ToArray();
        return new BlockLayout(b, width, prefill, valid, positions, tails, full, Math.Min(maxNewTokens, room));
    }
}
