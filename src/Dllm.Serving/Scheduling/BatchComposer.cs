namespace Dllm.Serving.Scheduling;

/// <summary>
/// Picks the waiting requests that join the running batch now: those of the batch's kind (<see cref="BatchKey"/>),
/// oldest first, up to the room left in the batch. Only while the oldest waiting request is of that kind: a request
/// of another kind at the head stops all joins, so the batch drains and the next one opens with it; no request waits
/// forever behind later arrivals. Requests passed over keep their place. With a token bound, joins stop at the
/// first request of the batch's kind whose reserved tokens do not fit what is left (a later, smaller one does not
/// jump ahead of it: it would wait for ever behind a stream of small ones).
/// </summary>
public static class BatchComposer
{
    /// <summary>Queue indices of the requests that join, ascending; empty when none may.</summary>
    public static int[] Compose(IReadOnlyList<AdmittedRequest> queue, BatchKey running, int room, long tokenRoom = long.MaxValue)
    {
        if (queue.Count == 0 || room <= 0 || queue[0].Key != running) return [];
        var picks = new List<int>();
        for (var i = 0; i < queue.Count && picks.Count < room; i++)
        {
            if (queue[i].Key != running) continue;
            if (queue[i].ReservedTokens > tokenRoom) break;
            tokenRoom -= queue[i].ReservedTokens;
            picks.Add(i);
        }
        return picks.ToArray();
    }
}
