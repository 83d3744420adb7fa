namespace Dllm.Serving.Scheduling;

/// <summary>
/// Picks the next batch from the queue: the oldest request always goes, then later ones in arrival order
/// that share its <see cref="BatchKey"/> and keep every member's token limit intact, up to the batch size.
/// Requests passed over keep their place for the next batch.
/// </summary>
public static class BatchComposer
{
    /// <summary>Queue indices of the batch, ascending; empty only for an empty queue.</summary>
    public static int[] Compose(IReadOnlyList<AdmittedRequest> queue, int maxBatch)
    {
        if (queue.Count == 0) return [];
        var head = queue[0];
        var picks = new List<int> { 0 };
        var longest = head.PromptTokens;
        var tolerated = head.LongestBatchmatePrompt;
        for (var i = 1; i < queue.Count && picks.Count < maxBatch; i++)
        {
            var r = queue[i];
            if (r.Key != head.Key) continue;
            var newLongest = Math.Max(longest, r.PromptTokens);
            var newTolerated = Math.Min(tolerated, r.LongestBatchmatePrompt);
            if (newLongest > newTolerated) continue;
            picks.Add(i);
            longest = newLongest;
            tolerated = newTolerated;
        }
        return picks.ToArray();
    }
}
