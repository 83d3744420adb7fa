using Dllm.Models;

namespace Dllm.Generation;

/// <summary>
/// A running batch that sequences join and leave while it decodes (continuous batching). <see cref="Add"/> queues a
/// prompt; it joins at the next point where the batch can take it (the next step for AR, the next block boundary
/// for block decoding). Every <see cref="Step"/> runs one decoding forward over the rows in the batch and reports
/// what it decided; a sequence that finishes or is <see cref="Cancel"/>led leaves at once and frees its cache rows.
/// The session owns its KV cache and every tensor; call it from one thread, and dispose it.
/// </summary>
/// <remarks>
/// Sequence ids count up from 0 in the order of <see cref="Add"/>. Stop-token ids are the session's; the token
/// limit and sampling are each sequence's own. A sequence's tokens do not depend on its batchmates: greedy
/// decoding gives the same tokens alone or joined mid-way (up to float rounding in batched kernels).
/// </remarks>
public abstract class DecodeSession : IDisposable
{
    private readonly List<Joiner> _waiting = [];
    private readonly HashSet<int> _cancelled = [];
    private readonly Dictionary<int, IDisposable> _prefilling = [];   // by sequence: waiting prompts whose prefill has started
    private int _next;

    protected DecodeSession(CausalLM model, IReadOnlyList<int> stopTokenIds, Func<int, IReadOnlyList<int>, bool>? stopWhen, DecodeProfile? profile)
    {
        Model = model;
        Stops = stopTokenIds.ToHashSet();
        StopWhen = stopWhen;
        Profile = profile;
    }

    protected CausalLM Model { get; }
    protected IReadOnlySet<int> Stops { get; }
    protected Func<int, IReadOnlyList<int>, bool>? StopWhen { get; }
    protected DecodeProfile? Profile { get; }

    /// <summary>Decoding forwards so far (prefill excluded).</summary>
    public int Forwards { get; protected set; }

    /// <summary>
    /// Chunked prefill: while sequences decode, a joining prompt is prefilled at most this many tokens per step (block
    /// decoding rounds it up to whole blocks), so a long prompt delays each step of the others by one chunk rather than
    /// by its whole prefill; it joins once prefilled. 0 (the default): a joining prompt is prefilled at once. With
    /// nothing decoding, prompts are always prefilled at once.
    /// </summary>
    public int PrefillChunk
    {
        get;
        init => field = CheckPrefillChunk(value);
    }

    /// <summary>
    /// Prompts waiting together (a burst of requests) share prefill forwards, grouped by length (the default; see
    /// <see cref="SimilarInLength{T}"/>). Off: one forward each, the way to measure what batching saves (bench prefill).
    /// </summary>
    public bool BatchPrefill { get; init; } = true;

    /// <summary>
    /// Rows of very different lengths attend in groups, each over its own key columns (KvCache.RowGroups), and the cache
    /// stores each group's columns only, instead of every row over and with the longest row's width (the default; AR and
    /// cached block decoding). Off: one attention call over every column of a rectangular cache, the way to measure
    /// what it saves (bench ragged).
    /// </summary>
    public bool RaggedAttention { get; init; } = true;

    /// <summary>The one check of a prefill chunk, shared by the library and the server's settings.</summary>
    public static int CheckPrefillChunk(int tokens) =>
        tokens >= 0 ? tokens : throw new DllmException($"the prefill chunk must be 0 (whole prompts) or more tokens, got {tokens}");

    /// <summary>Sequences in the batch now.</summary>
    public abstract int Running { get; }

    /// <summary>
    /// Bytes the batch's key/value caches hold now, spare capacity included: the running rows' cache and the caches
    /// of prompts being prefilled beside it (0 for decoding without a cache).
    /// </summary>
    public abstract long KvCacheBytes { get; }

    /// <summary>The prefill states of waiting prompts whose prefill has started.</summary>
    protected IEnumerable<IDisposable> PrefillStates => _prefilling.Values;

    /// <summary>Sequences added that have not joined yet.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>Sequences in the batch or about to join it.</summary>
    public int Count => Running + Waiting;

    /// <summary>
    /// Queues a prompt to join the batch; returns its sequence id. Its token limit is capped at what the context
    /// leaves after its own prompt (<see cref="Room"/>).
    /// </summary>
    public int Add(IReadOnlyList<int> prompt, DecodeOptions options)
    {
        options.Validate();
        if (prompt.Count == 0) throw new DllmException("a prompt is empty: it needs at least one token (e.g. BOS)");
        var room = Room(prompt.Count);
        if (room <= 0)
            throw new DllmException($"the prompt has {prompt.Count} tokens but the model's context is {Model.Config.MaxPositionEmbeddings}{ContextNote}; shorten it to leave room for at least one new token");
        var id = _next++;
        _waiting.Add(new Joiner(id, prompt.ToArray(), options with { MaxNewTokens = Math.Min(options.MaxNewTokens, room) }));
        return id;
    }

    /// <summary>New tokens a prompt of this length leaves room for in the context.</summary>
    public abstract int Room(int promptTokens);

    protected virtual string ContextNote => "";

    /// <summary>The sequence leaves before the next forward (or never joins), finishing as <see cref="FinishReason.Cancelled"/>.</summary>
    public void Cancel(int sequence) => _cancelled.Add(sequence);

    /// <summary>One decoding forward and what it decided; null once the batch is empty and nobody waits.</summary>
    public abstract DecodeStep? Step(CancellationToken cancel = default);

    /// <summary>The sequences waiting to join, oldest first (a subclass may be prefilling them).</summary>
    protected IReadOnlyList<Joiner> WaitingJoiners => _waiting;

    /// <summary>A waiting sequence's prefill state, made by <paramref name="start"/> the first time it is asked for.</summary>
    protected T Prefilling<T>(Joiner joiner, Func<Joiner, T> start) where T : class, IDisposable
    {
        if (_prefilling.TryGetValue(joiner.Sequence, out var state)) return (T)state;
        var started = start(joiner);
        _prefilling[joiner.Sequence] = started;
        return started;
    }

    /// <summary>A waiting sequence joins the batch now; its prefill state passes to the caller, who disposes it.</summary>
    protected T Admit<T>(Joiner joiner) where T : class, IDisposable
    {
        _waiting.Remove(joiner);
        var state = _prefilling[joiner.Sequence];
        _prefilling.Remove(joiner.Sequence);
        return (T)state;
    }

    /// <summary>
    /// Spends a step's prefill budget on the waiting prompts, oldest first: <paramref name="together"/> first prefills
    /// in one forward a group of prompts it can batch (given the waiting prompts and the budget, 0 = unlimited; called
    /// again until it takes none), then
    /// <paramref name="prefill"/> computes up to the given number of tokens of one prompt (0: all of it); both return
    /// how many tokens they did. Unlimited when nothing decodes or <see cref="PrefillChunk"/> is 0. Returns the tokens
    /// prefilled.
    /// </summary>
    protected int SpendPrefillBudget(bool othersDecoding, Func<Joiner, int, int> prefill, Func<IReadOnlyList<Joiner>, int, int>? together = null)
    {
        if (_waiting.Count == 0) return 0;
        var unlimited = !othersDecoding || PrefillChunk == 0;
        var budget = unlimited ? int.MaxValue : PrefillChunk;
        var spent = 0;
        // A burst of prompts costs one forward rather than one each (per-forward cost dominates short prompts).
        // Each call batches one group of prompts of similar length; the rest are prefilled one by one below.
        while (together is not null && BatchPrefill && _waiting.Count > 1 && budget > 0)
        {
            var done = together(_waiting.ToList(), unlimited ? 0 : budget);
            if (done == 0) break;
            spent += done;
            if (!unlimited) budget -= done;
        }
        foreach (var j in _waiting.ToList())
        {
            if (budget <= 0) break;
            var done = prefill(j, unlimited ? 0 : budget);
            spent += done;
            if (!unlimited) budget -= done;
        }
        return spent;
    }

    /// <summary>
    /// The prompts one batched prefill takes from <paramref name="candidates"/> (in age order): the oldest and as many
    /// others as fit with it in a window of lengths <paramref name="slack"/> wide, so no row is left-padded by more than
    /// that. Padding is paid in full: a burst of four prompts of 64-160 tokens prefilled together took 1.01-1.31x the time
    /// of one forward each (AR, two runs), while four of equal length took 0.68-0.85x (bench prefill). Age order is kept.
    /// </summary>
    internal static List<T> SimilarInLength<T>(List<T> candidates, Func<T, int> length, int slack)
    {
        if (candidates.Count < 2) return candidates;
        var anchor = length(candidates[0]);
        List<T> best = [candidates[0]];
        // The best window [low, low + slack] holding the oldest starts at some candidate's length.
        foreach (var low in candidates.Select(length).Where(l => l <= anchor && l >= anchor - slack).Distinct())
        {
            var group = candidates.Where(c => length(c) >= low && length(c) <= low + slack).ToList();
            if (group.Count > best.Count) best = group;
        }
        return best;
    }

    /// <summary>True when <paramref name="order"/> keeps every one of <paramref name="rows"/> rows where it is.</summary>
    internal static bool KeepsEveryRow(IReadOnlyList<int> order, int rows) =>
        order.Count == rows && order.Select((row, i) => row == i).All(same => same);

    /// <summary>
    /// Removes cancelled waiting sequences and reports cancelled rows (by their generated length): the subclass drops
    /// the rows <paramref name="leave"/> marks.
    /// </summary>
    protected void TakeCancelled(IReadOnlyList<(int Sequence, int Generated)> rows, List<SequenceUpdate> updates, List<int> leave)
    {
        if (_cancelled.Count == 0) return;
        for (var i = _waiting.Count - 1; i >= 0; i--)
            if (_cancelled.Contains(_waiting[i].Sequence))
            {
                updates.Add(new SequenceUpdate(_waiting[i].Sequence, [], [], [], FinishReason.Cancelled, 0));
                // Cancelled while its prompt was being prefilled: free that state too.
                if (_prefilling.Remove(_waiting[i].Sequence, out var state)) state.Dispose();
                _waiting.RemoveAt(i);
            }
        for (var i = 0; i < rows.Count; i++)
            if (_cancelled.Contains(rows[i].Sequence))
            {
                updates.Add(new SequenceUpdate(rows[i].Sequence, [], [], [], FinishReason.Cancelled, rows[i].Generated));
                leave.Add(i);
            }
        _cancelled.Clear();
    }

    protected sealed record Joiner(int Sequence, int[] Prompt, DecodeOptions Options);

    /// <summary>Frees the prefill state of prompts that never joined; sessions free their own state and call this.</summary>
    public virtual void Dispose()
    {
        foreach (var state in _prefilling.Values) state.Dispose();
        _prefilling.Clear();
    }
}
