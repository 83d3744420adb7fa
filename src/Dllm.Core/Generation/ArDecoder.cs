using Dllm.Attention;
using Dllm.Config;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// Autoregressive decoding with a KV cache: each prompt is prefilled once, then one forward per new token
/// for the sequences still running. A finished sequence leaves the batch (its cache rows are dropped).
/// Yields one <see cref="DecodeStep"/> per new token of the batch. A thin loop over <see cref="ArDecodeSession"/>.
/// </summary>
public static class ArDecoder
{
    public static IEnumerable<DecodeStep> Run(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, DecodeOptions options,
        Func<int, IReadOnlyList<int>, bool>? stopWhen = null, CancellationToken cancel = default, DecodeProfile? profile = null) =>
        Run(model, prompts, prompts.Select(_ => options).ToList(), stopWhen, cancel, profile);

    /// <summary>One <see cref="DecodeOptions"/> per prompt (token limits and sampling may differ; stop and pad ids are the first's).</summary>
    public static IEnumerable<DecodeStep> Run(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<DecodeOptions> perSequence,
        Func<int, IReadOnlyList<int>, bool>? stopWhen = null, CancellationToken cancel = default, DecodeProfile? profile = null)
    {
        if (prompts.Count == 0) throw new DllmException("no prompts to decode");
        using var session = new ArDecodeSession(model, perSequence[0].StopTokenIds, stopWhen, profile);
        for (var i = 0; i < prompts.Count; i++) session.Add(prompts[i], perSequence[i]);
        while (session.Step(cancel) is { } step) yield return step;
    }
}

/// <summary>
/// AR decoding as a <see cref="DecodeSession"/>: a sequence joins at the next step (its prompt is prefilled alone,
/// so no padding is computed) and leaves at the step that ends it. Each step samples one token for every row from
/// the logits the previous step (or the prefill) left, then the next step's forward feeds those tokens in; a row
/// cancelled in between never costs that forward.
///
/// Rows have their own RoPE positions; their caches are right-aligned to a common width, and the columns a row does
/// not use are masked. When rows leave, columns no remaining row uses are trimmed, so the width is the longest live
/// row's length.
/// </summary>
public sealed class ArDecodeSession : DecodeSession
{
    private KvCache _cache;
    private Tensor _valid;                  // [R, cache length]: false where a row has no key
    private Tensor? _logits;                // [R, V]: next-token logits of every row
    private List<Row> _rows = [];
    private readonly Device _device;

    private readonly PrefixCache? _prefixes;

    /// <param name="prefixes">Where joining prompts look for keys and values of a prefix an earlier prompt prefilled (and leave theirs); null: none.</param>
    public ArDecodeSession(CausalLM model, IReadOnlyList<int> stopTokenIds,
        Func<int, IReadOnlyList<int>, bool>? stopWhen = null, DecodeProfile? profile = null, PrefixCache? prefixes = null)
        : base(model, stopTokenIds, stopWhen, profile)
    {
        _prefixes = prefixes;
        _device = model.Placement.Device;
        _cache = new KvCache(model.Config.NumLayers);
        _valid = zeros(0, 0, dtype: ScalarType.Bool, device: _device).DetachFromDisposeScope();
    }

    public override int Running => _rows.Count;

    public override int Room(int promptTokens) => Model.Config.MaxPositionEmbeddings - promptTokens;

    public override DecodeStep? Step(CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        var updates = new List<SequenceUpdate>();
        var leave = new List<int>();
        TakeCancelled(_rows.Select(r => (r.Sequence, r.Generated.Count)).ToList(), updates, leave);
        if (leave.Count > 0) Keep(Enumerable.Range(0, _rows.Count).Except(leave).ToList());
        using var noGrad = no_grad();
        if (_rows.Count > 0 && _logits is null) FeedLastTokens();
        var prefilled = SpendPrefillBudget(_rows.Count > 0, (j, budget) => Prefill(j, budget), PrefillTogether);
        var joining = WaitingJoiners.Where(j => Pending(j).Ready).ToList();
        foreach (var j in joining) Join(j);
        if (joining.Count > 0) SortLongestFirst();
        if (_rows.Count == 0) return updates.Count > 0 || prefilled > 0 ? new DecodeStep(Forwards, updates, Prefilled: prefilled) : null;

        int[] tokens;
        float[] confidences;
        using (var scope = NewDisposeScope())
        {
            var (t, c) = Sampler.Pick(_logits!, _rows.Select(r => r.Sampling).ToList(), _rows.Select(r => r.Generator).ToList());
            tokens = t.cpu().data<long>().Select(x => (int)x).ToArray();
            confidences = c.cpu().data<float>().ToArray();
        }
        NonFiniteLogits.Check(confidences);
        _logits!.Dispose();
        _logits = null;
        Forwards++;
        var rows = _rows.Count;
        var first = _rows[0].Generated.Count;
        var keep = new List<int>();
        for (var i = 0; i < _rows.Count; i++)
        {
            var r = _rows[i];
            var position = r.Generated.Count;
            r.Generated.Add(tokens[i]);
            FinishReason? finish = null;
            var length = -1;
            if (Stops.Contains(tokens[i])) (finish, length) = (FinishReason.Stop, position);
            else if (StopWhen?.Invoke(r.Sequence, r.Generated) == true) (finish, length) = (FinishReason.Stop, position + 1);
            else if (position + 1 >= r.Limit) (finish, length) = (FinishReason.Length, position + 1);
            else keep.Add(i);
            updates.Add(new SequenceUpdate(r.Sequence, [position], [tokens[i]], [confidences[i]], finish, length));
            if (finish is not null) StoreFinished(i);
        }
        Keep(keep);
        return new DecodeStep(Forwards, updates, first, 1, rows, prefilled);
    }

    /// <summary>
    /// A finished row leaves its prompt and answer in the prefix cache: a chat's next turn starts with both. The cache
    /// holds every token but the last sampled one, right-aligned like every row's.
    /// </summary>
    private void StoreFinished(int row)
    {
        if (_prefixes is null) return;
        var r = _rows[row];
        int[] sequence = [.. r.Prompt, .. r.Generated.Take(r.Generated.Count - 1)];
        _prefixes.Store(sequence, sequence.Length, 1, _cache, row, _cache.Length - sequence.Length);
    }

    /// <summary>One forward over every row's last sampled token: the next logits.</summary>
    private void FeedLastTokens()
    {
        using var scope = NewDisposeScope();
        var r = _rows.Count;
        var next = tensor(_rows.Select(x => (long)x.Generated[^1]).ToArray(), device: _device).unsqueeze(1);              // [R, 1]
        var positions = tensor(_rows.Select(x => (long)(x.Length - 1)).ToArray(), device: _device).unsqueeze(1);
        Replace(ref _valid, cat([_valid, ones(r, 1, dtype: ScalarType.Bool, device: _device)], 1));
        var mask = _valid.unsqueeze(1).unsqueeze(1);                                                                       // [R, 1, 1, S]
        // Rows are kept longest first, so rows of similar length are neighbours and attend in groups over their own
        // columns only: a short row beside a long one pays for at most RaggedSlack columns of padding.
        _cache.RowGroups = !RaggedAttention ? null : KvCache.GroupsByLength(_rows.Select(x => (long)x.Length).ToArray(), _valid.shape[1], RaggedSlack);
        if (_cache.RowGroups is not null) DecodeProfile.Ragged(Profile);
        try
        {
            var logits = DecodeProfile.Forward(Profile, () => Model.Forward(next, positions, mask, _cache).squeeze(1));
            _logits = logits.DetachFromDisposeScope();
        }
        finally { _cache.RowGroups = null; }
    }

    /// <summary>
    /// How much longer than the shortest row of its attention group a row may be: the most padding a row attends
    /// over. A group costs an attention call per layer, so groups are no finer than a block.
    /// </summary>
    private const int RaggedSlack = DiffusionSettings.DefaultBlockSize;

    /// <summary>
    /// Orders the rows longest first (every row grows by one token a step, so the order holds until the next join):
    /// rows of similar length become neighbours, which ragged attention needs. Costs one copy of the cache when a
    /// join changes the order.
    /// </summary>
    private void SortLongestFirst()
    {
        var order = Enumerable.Range(0, _rows.Count).OrderByDescending(i => _rows[i].Length).ToList();
        Keep(order);
    }

    public override long KvCacheBytes => _cache.AllocatedBytes + PrefillStates.OfType<PromptPrefill>().Sum(p => p.Side.AllocatedBytes);

    /// <summary>The joiner's prompt on its way in (started on first sight: the prefix cache may already hold some of it).</summary>
    private PromptPrefill Pending(Joiner j) => Prefilling(j, joiner =>
    {
        var side = new KvCache(Model.Config.NumLayers, joiner.Prompt.Length);
        // AR attention is block-causal with block 1. The last prompt token always runs: its logits are the first pick.
        var reused = _prefixes?.Load(joiner.Prompt, joiner.Prompt.Length - 1, 1, side) ?? 0;
        return new PromptPrefill(side) { Done = reused };
    });

    /// <summary>Prefills up to <paramref name="maxTokens"/> more of the joiner's prompt (0: the rest); the last chunk keeps the next-token logits.</summary>
    private int Prefill(Joiner j, int maxTokens)
    {
        var pending = Pending(j);
        var p = j.Prompt.Length;
        if (pending.Done >= p) return 0;
        var (from, to) = (pending.Done, maxTokens <= 0 ? p : Math.Min(p, pending.Done + maxTokens));
        using var scope = NewDisposeScope();
        var tokens = tensor(j.Prompt[from..to].Select(t => (long)t).ToArray(), device: _device).unsqueeze(0);
        var positions = arange(from, to, device: _device).unsqueeze(0);
        if (to < p)
            DecodeProfile.Prefill(Profile, () => Model.Hidden(Model.Embed(tokens), positions, null, pending.Side));
        else
        {
            var logits = DecodeProfile.Prefill(Profile, () => Model.Forward(tokens, positions, null, pending.Side, logitsForLast: 1)).squeeze(1);
            pending.Logits = logits.DetachFromDisposeScope();
            _prefixes?.Store(j.Prompt, p, 1, pending.Side);
        }
        pending.Done = to;
        return to - from;
    }

    /// <summary>
    /// How far apart in length prompts prefilled together may be: the most left padding a row pays. Half the
    /// block decoder's default block; at 128-token prompts it bounds the padding at an eighth of the work.
    /// </summary>
    private const int PrefillSlack = 16;

    /// <summary>
    /// Prefills the oldest waiting prompts that nothing was reused or computed for yet, as many as fit the budget
    /// (0: all) and lie within <see cref="PrefillSlack"/> tokens of the oldest's length, in one forward: left-padded
    /// to the longest, with each row's own positions and padding masked, so a row computes what its prompt computes
    /// alone. Each takes its columns of the batch's cache as its own cache, and its last logits. Fewer than two:
    /// nothing (the one-prompt path does it).
    /// </summary>
    private int PrefillTogether(IReadOnlyList<Joiner> joiners, int budget)
    {
        var take = new List<Joiner>();
        var examined = 0;
        foreach (var j in joiners)
        {
            // Prompts past the budget are not even started (a start may load a stored prefix).
            examined += j.Prompt.Length;
            if (budget > 0 && examined > budget) break;
            if (Pending(j).Done != 0) continue;
            take.Add(j);
        }
        take = SimilarInLength(take, j => j.Prompt.Length, PrefillSlack);
        if (take.Count < 2) return 0;
        var total = take.Sum(j => j.Prompt.Length);
        using var scope = NewDisposeScope();
        using var batch = PromptBatch.Create(take.Select(j => (IReadOnlyList<int>)j.Prompt).ToList(), 0, 1, Model.Config.MaxPositionEmbeddings, _device);
        var mask = AttentionMasks.WithPadding(AttentionMasks.Causal(batch.Width, device: _device), batch.Valid);
        using var cache = new KvCache(Model.Config.NumLayers, batch.Width);
        var logits = DecodeProfile.Prefill(Profile, () => Model.Forward(batch.Tokens, batch.Positions, mask, cache, logitsForLast: 1)).squeeze(1);
        for (var r = 0; r < take.Count; r++)
        {
            var (j, pending, p) = (take[r], Pending(take[r]), take[r].Prompt.Length);
            pending.Side.LoadRow(cache, r, batch.Width - p, p);
            pending.Logits = logits.narrow(0, r, 1).clone().DetachFromDisposeScope();
            pending.Done = p;
            _prefixes?.Store(j.Prompt, p, 1, pending.Side);
        }
        return total;
    }

    private void Join(Joiner j)
    {
        using var scope = NewDisposeScope();
        var pending = Admit<PromptPrefill>(j);
        var p = j.Prompt.Length;
        var width = Math.Max(_cache.Length, p);
        _cache.AppendRows(_rows.Count, pending.Side, 1);
        Replace(ref _valid, cat([PadLeft(_valid, width), PadLeft(ones(1, p, dtype: ScalarType.Bool, device: _device), width)], 0));
        var logits = pending.Logits!;
        var all = _logits is null ? logits.alias() : cat([_logits, logits], 0);
        _logits?.Dispose();
        _logits = all.DetachFromDisposeScope();
        pending.Dispose();
        _rows.Add(new Row(j.Sequence, j.Prompt, j.Options.MaxNewTokens, j.Options.Sampling, Sampler.NewGenerator(j.Options.Sampling.Seed)));
    }

    /// <summary>A prompt being prefilled on its own cache before it joins; <see cref="Logits"/> once all of it is.</summary>
    private sealed class PromptPrefill(KvCache side) : IDisposable
    {
        public KvCache Side { get; } = side;
        public int Done { get; set; }
        public Tensor? Logits { get; set; }
        public bool Ready => Logits is not null;

        public void Dispose()
        {
            Side.Dispose();
            Logits?.Dispose();
        }
    }

    private static Tensor PadLeft(Tensor valid, long width) =>
        valid.shape[1] == width ? valid : cat([zeros(valid.shape[0], width - valid.shape[1], dtype: ScalarType.Bool, device: valid.device), valid], 1);

    /// <summary>
    /// Keeps the given rows, in the given order: the others' cache rows are freed, and columns no remaining row uses
    /// are trimmed.
    /// </summary>
    private void Keep(List<int> keep)
    {
        if (KeepsEveryRow(keep, _rows.Count)) return;
        _rows = keep.Select(i => _rows[i]).ToList();
        if (keep.Count == 0)
        {
            _cache.Dispose();
            _cache = new KvCache(Model.Config.NumLayers);
            Replace(ref _valid, zeros(0, 0, dtype: ScalarType.Bool, device: _device));
            _logits?.Dispose();
            _logits = null;
            return;
        }
        using var scope = NewDisposeScope();
        var index = tensor(keep.Select(i => (long)i).ToArray(), device: _device);
        Replace(ref _valid, _valid.index_select(0, index));
        if (_logits is { } l)
        {
            _logits = l.index_select(0, index).DetachFromDisposeScope();
            l.Dispose();
        }
        if (_cache.BatchSize > 0) _cache.KeepRows(keep.Select(i => (long)i).ToArray());
        Replace(ref _valid, _cache.TrimUnusedFront(_valid));
    }

    private static void Replace(ref Tensor slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        if (!ReferenceEquals(old, slot)) old.Dispose();
    }

    public override void Dispose()
    {
        base.Dispose();
        _valid.Dispose();
        _logits?.Dispose();
        _cache.Dispose();
    }

    private sealed class Row(int sequence, int[] prompt, int limit, SamplingOptions sampling, Generator generator)
    {
        public int Sequence { get; } = sequence;
        public int[] Prompt { get; } = prompt;
        public int Limit { get; } = limit;
        public SamplingOptions Sampling { get; } = sampling;
        public Generator Generator { get; } = generator;
        public List<int> Generated { get; } = [];
        /// <summary>Prompt and generated tokens: the keys the row has once its last token is fed.</summary>
        public int Length => Prompt.Length + Generated.Count;
    }
}
