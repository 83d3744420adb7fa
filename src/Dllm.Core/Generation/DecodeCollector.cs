namespace Dllm.Generation;

/// <summary>Folds a stream of decode steps into the final token list of each sequence.</summary>
public static class DecodeCollector
{
    public static IReadOnlyList<DecodedSequence> Collect(IEnumerable<DecodeStep> steps, int sequences)
    {
        var tokens = Enumerable.Range(0, sequences).Select(_ => new SortedDictionary<int, int>()).ToArray();
        var finish = new FinishReason?[sequences];
        var length = new int[sequences];
        foreach (var step in steps)
            foreach (var u in step.Updates)
            {
                for (var i = 0; i < u.Positions.Length; i++) tokens[u.Sequence][u.Positions[i]] = u.Tokens[i];
                if (u.Finished is { } f) { finish[u.Sequence] = f; length[u.Sequence] = u.FinalLength; }
            }
        return Enumerable.Range(0, sequences).Select(s =>
        {
            var all = tokens[s].Values.ToArray();
            var n = finish[s] is null ? all.Length : Math.Min(length[s], all.Length);
            return new DecodedSequence(all[..n], finish[s] ?? FinishReason.Cancelled);
        }).ToList();
    }
}
