using Dllm.Attention;
using Dllm.Config;
using Dllm.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// The model side of block decoding: the final hidden states [R, B, H] that predict the slots of the rows'
/// current windows (the decoder applies the LM head to the slots it still needs). Same-position labels read the
/// window's own outputs. Shifted labels read slot s from the
/// output at s - 1: inside the window from the noisy window itself, and for slot 0 from the clean output
/// of the last committed position, which never sees the window (METHOD.md §2, token shift).
///
/// Rows come and go between blocks: <see cref="StartJoin"/> takes a sequence's prompt (its full blocks become its
/// context, its first window starts right after them), <see cref="Prefill"/> computes that context's keys and values
/// in chunks (so a long prompt does not stall the rows decoding), <see cref="Join"/> adds the row once they are all
/// there, and <see cref="KeepRows"/> drops finished ones. Each row
/// has its own RoPE positions, so rows of different lengths share a forward; their contexts are aligned to
/// the right of a common width and the columns a row does not use are masked.
/// </summary>
internal abstract class BlockForward : IDisposable
{
    protected readonly CausalLM Model;
    protected readonly int B;
    protected readonly bool Shifted;
    protected readonly Device Device;
    protected readonly DecodeProfile? Profile;
    /// <summary>Absolute position of each row's window slot 0.</summary>
    protected readonly List<long> WindowStart = [];

    protected BlockForward(CausalLM model, int blockSize, LabelPosition labels, DecodeProfile? profile) =>
        (Model, B, Shifted, Device, Profile) = (model, blockSize, labels == LabelPosition.Shift, model.Placement.Device, profile);

    public static BlockForward Create(CausalLM model, int blockSize, LabelPosition labels, bool cached, DecodeProfile? profile, PrefixCache? prefixes = null) =>
        cached ? new CachedBlockForward(model, blockSize, labels, profile, prefixes) : new RecomputedBlockForward(model, blockSize, labels, profile);

    public int Rows => WindowStart.Count;

    /// <summary>Bytes the rows' key/value cache holds (0 without a cache).</summary>
    public virtual long KvCacheBytes => 0;

    /// <summary>
    /// A sequence on its way in: <paramref name="fullBlocks"/> is its prompt's whole blocks (a multiple of B tokens,
    /// maybe none); the rest of the prompt is the fixed head of its first window. Nothing is computed yet, except
    /// what a prefix cache already holds.
    /// </summary>
    public virtual PendingJoin StartJoin(int[] fullBlocks) => new(fullBlocks, 0, null);

    /// <summary>
    /// Prefills up to <paramref name="maxTokens"/> more of the pending prompt's context (whole blocks; 0 = all of it)
    /// on its own cache; returns the tokens computed.
    /// </summary>
    public virtual int Prefill(PendingJoin pending, int maxTokens) => 0;

    /// <summary>
    /// Prefills, in one forward, the contexts of the oldest pending prompts that nothing was computed or reused for
    /// yet, as many as fit <paramref name="budget"/> tokens (0: all) and lie within a block of the oldest's length; returns
    /// the tokens computed. Fewer than two: none.
    /// <paramref name="pending"/> is lazy: a prompt is started only when it is looked at.
    /// </summary>
    public virtual int PrefillTogether(IEnumerable<PendingJoin> pending, int budget) => 0;

    /// <summary>Adds a prefilled sequence as a row, at a block boundary (before the block's first <see cref="Outputs"/>).</summary>
    public abstract void Join(PendingJoin pending);

    /// <summary>The hidden states [R, B, H] that predict the slots of the rows' current windows (CPU token arrays).</summary>
    public abstract Tensor Outputs(int[][] windows, bool firstStepOfBlock);

    /// <summary>Rows attend in groups of similar length, each over its own key columns (see <see cref="LongestFirst"/>).</summary>
    public bool Ragged { get; set; }

    /// <summary>
    /// The row order that puts rows with more context first (a permutation for <see cref="KeepRows(IReadOnlyList{int})"/>),
    /// or null when they already are: ragged attention groups neighbouring rows. Every row commits a block per block,
    /// so the order holds until rows join.
    /// </summary>
    public virtual int[]? LongestFirst() => null;

    /// <summary>Every row's window is final: it becomes context, and the next windows start B later.</summary>
    public abstract void Advance(int[][] finishedWindows);

    /// <summary>
    /// Leaves what the cache holds of a row (its prompt and committed blocks, given its prompt and generated tokens) in
    /// the prefix cache, for a later prompt that repeats them (a chat's next turn).
    /// </summary>
    public virtual void Store(int row, int[] prompt, IReadOnlyList<int> generated) { }

    /// <summary>Keeps only the given rows, in order (finished or cancelled sequences leave; their cache rows are freed).</summary>
    public void KeepRows(IReadOnlyList<int> keep)
    {
        if (DecodeSession.KeepsEveryRow(keep, Rows)) return;
        var starts = keep.Select(i => WindowStart[i]).ToList();
        WindowStart.Clear();
        WindowStart.AddRange(starts);
        using var index = tensor(keep.Select(i => (long)i).ToArray(), device: Device);
        KeepRows(index, keep);
    }

    protected abstract void KeepRows(Tensor index, IReadOnlyList<int> keep);

    /// <summary>
    /// [R, blocks * B]: the absolute positions of <paramref name="blocks"/> consecutive blocks per row, the first
    /// starting <paramref name="offset"/> from the row's window (clamped at 0). Built on the host: one tensor per forward.
    /// </summary>
    protected Tensor WindowPositions(long offset = 0, int blocks = 1)
    {
        var width = blocks * B;
        var flat = new long[Rows * width];
        for (var i = 0; i < Rows; i++)
            for (var j = 0; j < width; j++) flat[i * width + j] = Math.Max(0, WindowStart[i] + offset + j);
        return tensor(flat, [Rows, width], device: Device);
    }

    /// <summary>[R, width] token ids: each row is its arrays laid end to end (a null or short array leaves zeros).</summary>
    protected Tensor Tokens(int width, params IReadOnlyList<int[]?>[] parts)
    {
        var rows = parts[0].Count;
        var flat = new long[rows * width];
        for (var i = 0; i < rows; i++)
        {
            var at = i * width;
            foreach (var part in parts)
            {
                if (part[i] is { } row)
                    for (var j = 0; j < row.Length; j++) flat[at + j] = row[j];
                at += B;
            }
        }
        return tensor(flat, [rows, width], device: Device);
    }

    /// <summary>[R, C] padded on the left to <paramref name="width"/> columns with <paramref name="fill"/>.</summary>
    protected static Tensor PadLeft(Tensor x, long width, Scalar fill)
    {
        var missing = width - x.shape[1];
        if (missing == 0) return x.alias();
        return cat([full(x.shape[0], missing, fill, dtype: x.dtype, device: x.device), x], 1);
    }

    protected static void Replace(ref Tensor slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        if (!ReferenceEquals(old, slot)) old.Dispose();
    }

    public virtual void Dispose() { }
}

/// <summary>
/// Cached: a joining prompt's full blocks but the last are prefilled (alone, so no padding is computed); its last
/// full block waits, like every other row's finished window, to be committed by the first forward of the next
/// block, which runs [finished block ; new window] together, so committing costs no extra forward and shifted
/// labels read slot 0 of every row's window from that forward. Steps after the first see the cache and the window
/// only; their mask and positions are built once per block. A row with nothing to commit (a prompt shorter than
/// a block) takes part in that forward as masked padding.
/// </summary>
internal sealed class CachedBlockForward : BlockForward
{
    private KvCache _cache;
    private Tensor _keyValid;                   // [R, cache length]: false where a row has no key (alignment padding)
    private readonly List<int[]?> _pending = [];   // per row: the finished window (or last prompt block) not yet in the cache
    private Tensor? _slotZero;                  // shifted labels: [R, 1, H] the output that predicts slot 0 of the current window
    private (Tensor Positions, Tensor Mask)? _step;   // the current block's later steps
    private RowGroup[]? _groups;                // ragged attention groups of the current rows (null: one call)
    private bool _groupsStale = true;

    private readonly PrefixCache? _prefixes;

    public CachedBlockForward(CausalLM model, int blockSize, LabelPosition labels, DecodeProfile? profile, PrefixCache? prefixes) : base(model, blockSize, labels, profile)
    {
        _prefixes = prefixes;
        _cache = new KvCache(model.Config.NumLayers);
        _keyValid = zeros(0, 0, dtype: ScalarType.Bool, device: Device).DetachFromDisposeScope();
    }

    public override long KvCacheBytes => _cache.AllocatedBytes;

    public override PendingJoin StartJoin(int[] tokens)
    {
        // Every full block but the last is prefilled on the side (the last is committed by the next block-start forward).
        // Whole chunks another prompt already prefilled come from the prefix cache.
        var prefix = Math.Max(0, tokens.Length - B);
        var side = new KvCache(Model.Config.NumLayers, prefix);
        var pending = new PendingJoin(tokens, prefix, side);
        pending.Done = prefix > 0 ? _prefixes?.Load(tokens, prefix, B, side) ?? 0 : 0;
        return pending;
    }

    public override int Prefill(PendingJoin pending, int maxTokens)
    {
        if (pending.Ready) return 0;
        var from = pending.Done;
        var to = maxTokens <= 0 ? pending.Prefix : Math.Min(pending.Prefix, from + Math.Max(B, maxTokens / B * B));
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var tokens = tensor(pending.FullBlocks[from..to].Select(t => (long)t).ToArray(), device: Device).unsqueeze(0);
            var positions = arange(from, to, device: Device).unsqueeze(0);
            var mask = AttentionMasks.BlockCausal(positions, arange(to, device: Device).unsqueeze(0), B);
            DecodeProfile.Prefill(Profile, () => Model.Hidden(Model.Embed(tokens), positions, mask, pending.Side));
        }
        pending.Done = to;
        if (pending.Ready) _prefixes?.Store(pending.FullBlocks, pending.Prefix, B, pending.Side!);
        return to - from;
    }

    public override int PrefillTogether(IEnumerable<PendingJoin> pending, int budget)
    {
        var take = new List<PendingJoin>();
        var examined = 0;
        foreach (var p in pending)
        {
            examined += p.Prefix;
            if (budget > 0 && examined > budget) break;
            if (p.Done != 0 || p.Ready) continue;
            take.Add(p);
        }
        // Contexts are whole blocks: within one block of each other, no row pays more than a block of padding.
        take = DecodeSession.SimilarInLength(take, p => p.Prefix, B);
        if (take.Count < 2) return 0;
        var total = take.Sum(p => p.Prefix);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Left-padded to the longest context; contexts are whole blocks, so the padding is too and every row's blocks
        // keep their boundaries. Each row has its own positions and sees none of the padding: it computes what it
        // computes alone.
        using var batch = PromptBatch.Create(take.Select(p => (IReadOnlyList<int>)p.FullBlocks[..p.Prefix]).ToList(), 0, 1, Model.Config.MaxPositionEmbeddings, Device);
        var mask = AttentionMasks.WithPadding(AttentionMasks.BlockCausal(batch.Positions, batch.Positions, B), batch.Valid);
        using var cache = new KvCache(Model.Config.NumLayers, batch.Width);
        DecodeProfile.Prefill(Profile, () => Model.Hidden(Model.Embed(batch.Tokens), batch.Positions, mask, cache));
        for (var r = 0; r < take.Count; r++)
        {
            var p = take[r];
            p.Side!.LoadRow(cache, r, batch.Width - p.Prefix, p.Prefix);
            p.Done = p.Prefix;
            _prefixes?.Store(p.FullBlocks, p.Prefix, B, p.Side);
        }
        return total;
    }

    public override void Join(PendingJoin pending)
    {
        if (!pending.Ready) throw new InvalidOperationException("a row joins once its prompt is prefilled");
        DropStep();
        var (n, prefix) = (pending.FullBlocks.Length, pending.Prefix);
        using var scope = NewDisposeScope();
        var width = Math.Max(_cache.Length, prefix);
        _cache.AppendRows(Rows, pending.Side!, 1);
        pending.Dispose();
        var mine = PadLeft(ones(1, prefix, dtype: ScalarType.Bool, device: Device), width, false);
        Replace(ref _keyValid, cat([PadLeft(_keyValid, width, false), mine], 0));
        // Rows join at block boundaries only, where every row that stays has a finished window pending, so slot 0 is
        // read afresh by the next block's first forward.
        _slotZero?.Dispose();
        _slotZero = null;
        _pending.Add(n >= B ? pending.FullBlocks[prefix..] : null);
        WindowStart.Add(n);
    }

    public override int[]? LongestFirst()
    {
        // Ordered by where each row's keys will begin once the block's first forward commits the pending blocks: a row
        // with no keys yet gets them there if it has a pending block, later if not. Ordering by the keys before the
        // commit would tie those rows and leave them out of order after it.
        if (Rows < 2) return null;   // one row is always in order (and reading its key columns costs a host sync)
        var first = FirstKeyColumns();
        var width = _keyValid.shape[1];
        for (var i = 0; i < first.Length; i++)
            if (first[i] == width && _pending[i] is null) first[i] = width + B;
        var order = Enumerable.Range(0, first.Length).OrderBy(i => first[i]).ToArray();
        return DecodeSession.KeepsEveryRow(order, order.Length) ? null : order;
    }

    /// <summary>Per row, the first cache column holding one of its keys (the cache length when it has none yet).</summary>
    private long[] FirstKeyColumns()
    {
        using var scope = NewDisposeScope();
        var width = _keyValid.shape[1];
        if (width == 0) return new long[Rows];
        var first = _keyValid.to_type(ScalarType.Int32).argmax(1).where(_keyValid.any(1), width).cpu();
        return first.data<long>().ToArray();
    }

    /// <summary>Runs a forward on the cache with this block's ragged attention groups, recomputed when rows changed.</summary>
    private Tensor Forward(Func<Tensor> forward)
    {
        if (_groupsStale)
        {
            // Rows are sorted at every block start; should they ever not be, there are no groups: one call over every
            // column is exact either way. One row is one group, so it needs no host read of its key columns.
            _groups = null;
            if (Ragged && Rows > 1)
            {
                var first = FirstKeyColumns();
                var width = _keyValid.shape[1];
                _groups = KvCache.GroupsByLength(first.Select(c => width - c).ToArray(), width, B);
            }
            _groupsStale = false;
        }
        if (_groups is null) return DecodeProfile.Forward(Profile, forward);
        DecodeProfile.Ragged(Profile);
        _cache.RowGroups = _groups;
        try { return DecodeProfile.Forward(Profile, forward); }
        finally { _cache.RowGroups = null; }
    }

    public override Tensor Outputs(int[][] windows, bool firstStepOfBlock)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (firstStepOfBlock) _groupsStale = true;
        Tensor h;
        if (firstStepOfBlock && _pending.Any(p => p is not null))
        {
            // [pending ; window]: the pending block sees the cache and itself, the window sees all of that and itself.
            var r = windows.Length;
            var pendingValid = tensor(_pending.Select(p => p is not null).ToArray(), device: Device).unsqueeze(1).expand(r, B);
            var tokens = Tokens(2 * B, _pending, windows);                                                // [R, 2B]
            var positions = WindowPositions(-B, blocks: 2);
            var mask = AttentionMasks.CachedBlocks(_keyValid, 2, B,
                _pending.All(p => p is not null) ? null : cat([pendingValid, ones(r, B, dtype: ScalarType.Bool, device: Device)], 1));
            var all = Forward(() => Model.Hidden(Model.Embed(tokens), positions, mask, _cache, commit: B));
            Replace(ref _keyValid, cat([_keyValid, pendingValid], 1));
            for (var i = 0; i < _pending.Count; i++) _pending[i] = null;
            if (Shifted)
            {
                _slotZero?.Dispose();
                _slotZero = all.narrow(1, B - 1, 1).contiguous().DetachFromDisposeScope();
            }
            h = all.narrow(1, B, B);
        }
        else
        {
            if (firstStepOfBlock)
            {
                // Nothing to commit: every row is new and shorter than a block, so slot 0 is prompt for all of them.
                _slotZero?.Dispose();
                _slotZero = null;
            }
            _step ??= StepInputs();
            var (positions, mask) = _step.Value;
            var window = Tokens(B, windows);
            h = Forward(() => Model.Hidden(Model.Embed(window), positions, mask, _cache, commit: 0));
        }
        // Rows whose slot 0 is prompt never read it: any output stands in where there is no committed one.
        var outputs = Shifted ? cat([_slotZero ?? h.narrow(1, 0, 1), h.narrow(1, 0, B - 1)], 1) : h;
        return outputs.MoveToOuterDisposeScope();
    }

    public override void Store(int row, int[] prompt, IReadOnlyList<int> generated)
    {
        if (_prefixes is null) return;
        // Every row's committed positions end at the cache's end; a window still pending is not among them.
        var committed = (int)WindowStart[row] - (_pending[row]?.Length ?? 0);
        if (committed <= 0) return;
        _prefixes.Store([.. prompt, .. generated], committed, B, _cache, row, _cache.Length - committed);
    }

    private (Tensor, Tensor) StepInputs()
    {
        using var scope = NewDisposeScope();
        var mask = AttentionMasks.CachedBlocks(_keyValid, 1, B);
        return (WindowPositions().DetachFromDisposeScope(), mask.DetachFromDisposeScope());
    }

    public override void Advance(int[][] finishedWindows)
    {
        DropStep();
        for (var i = 0; i < finishedWindows.Length; i++)
        {
            _pending[i] = finishedWindows[i];
            WindowStart[i] += B;
        }
    }

    protected override void KeepRows(Tensor index, IReadOnlyList<int> keep)
    {
        DropStep();
        _groupsStale = true;
        var pending = keep.Select(i => _pending[i]).ToList();
        _pending.Clear();
        _pending.AddRange(pending);
        if (keep.Count == 0)
        {
            // The batch is empty: start over with a fresh cache rather than keep a zero-row one.
            _cache.Dispose();
            _cache = new KvCache(Model.Config.NumLayers);
            Replace(ref _keyValid, zeros(0, 0, dtype: ScalarType.Bool, device: Device));
            _slotZero?.Dispose();
            _slotZero = null;
            return;
        }
        using var scope = NewDisposeScope();   // TrimUnusedFront's temporaries; Replace keeps what stays
        Replace(ref _keyValid, _keyValid.index_select(0, index));
        if (_slotZero is { } zero)
        {
            _slotZero = zero.index_select(0, index).DetachFromDisposeScope();
            zero.Dispose();
        }
        if (_cache.BatchSize > 0) _cache.KeepRows(keep.Select(i => (long)i).ToArray());
        // Columns that only the rows that left used are padding for everyone now: free them.
        Replace(ref _keyValid, _cache.TrimUnusedFront(_keyValid));
    }

    private void DropStep()
    {
        if (_step is not { } s) return;
        s.Positions.Dispose();
        s.Mask.Dispose();
        _step = null;
    }

    public override void Dispose()
    {
        DropStep();
        _keyValid.Dispose();
        _slotZero?.Dispose();
        _cache.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// The reference: every step recomputes the whole sequence (committed blocks and the window) under the
/// block-causal mask, as the official generate does. Same attention pattern as the cached path, so the
/// same tokens; kept for tests and the benchmark's reference row.
/// </summary>
internal sealed class RecomputedBlockForward : BlockForward
{
    private Tensor _tokens, _positions, _valid;   // committed context [R, T], right-aligned

    public RecomputedBlockForward(CausalLM model, int blockSize, LabelPosition labels, DecodeProfile? profile) : base(model, blockSize, labels, profile)
    {
        _tokens = zeros(0, 0, dtype: ScalarType.Int64, device: Device).DetachFromDisposeScope();
        _positions = zeros(0, 0, dtype: ScalarType.Int64, device: Device).DetachFromDisposeScope();
        _valid = zeros(0, 0, dtype: ScalarType.Bool, device: Device).DetachFromDisposeScope();
    }

    public override void Join(PendingJoin pending)
    {
        using var scope = NewDisposeScope();
        var fullBlocks = pending.FullBlocks;
        var n = fullBlocks.Length;
        var width = Math.Max(_tokens.shape[1], n);
        var tokens = tensor(fullBlocks.Select(t => (long)t).ToArray(), [1, n], device: Device);
        pending.Dispose();
        Replace(ref _tokens, cat([PadLeft(_tokens, width, 0), PadLeft(tokens, width, 0)], 0));
        Replace(ref _positions, cat([PadLeft(_positions, width, 0), PadLeft(arange(n, device: Device).unsqueeze(0), width, 0)], 0));
        Replace(ref _valid, cat([PadLeft(_valid, width, false), PadLeft(ones(1, n, dtype: ScalarType.Bool, device: Device), width, false)], 0));
        WindowStart.Add(n);
    }

    public override Tensor Outputs(int[][] windows, bool firstStepOfBlock)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var r = windows.Length;
        var t = _tokens.shape[1];
        var positions = cat([_positions, WindowPositions()], 1);
        var mask = AttentionMasks.WithPadding(AttentionMasks.BlockCausal(positions, positions, B),
            cat([_valid, ones(r, B, dtype: ScalarType.Bool, device: Device)], 1));
        var tokens = cat([_tokens, Tokens(B, windows)], 1);
        var h = DecodeProfile.Forward(Profile, () => Model.Hidden(Model.Embed(tokens), positions, mask));
        // Shifted: slot s reads position s - 1. Rows with no committed context have prompt in slot 0 (never
        // predicted), so any output stands in for it.
        var read = !Shifted ? h.narrow(1, t, B)
            : t > 0 ? h.narrow(1, t - 1, B)
            : cat([h.narrow(1, 0, 1), h.narrow(1, 0, B - 1)], 1);
        return read.MoveToOuterDisposeScope();
    }

    public override void Advance(int[][] finishedWindows)
    {
        if (finishedWindows.Length == 0) return;
        using var scope = NewDisposeScope();
        var r = finishedWindows.Length;
        Replace(ref _positions, cat([_positions, WindowPositions()], 1));
        Replace(ref _tokens, cat([_tokens, Tokens(B, finishedWindows)], 1));
        Replace(ref _valid, cat([_valid, ones(r, B, dtype: ScalarType.Bool, device: Device)], 1));
        for (var i = 0; i < r; i++) WindowStart[i] += B;
    }

    protected override void KeepRows(Tensor index, IReadOnlyList<int> keep)
    {
        using var scope = NewDisposeScope();
        Replace(ref _tokens, _tokens.index_select(0, index));
        Replace(ref _positions, _positions.index_select(0, index));
        Replace(ref _valid, _valid.index_select(0, index));
    }

    public override void Dispose()
    {
        _tokens.Dispose();
        _positions.Dispose();
        _valid.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// A prompt on its way into a block batch: its full blocks, how many of them are context to prefill on the side
/// (<see cref="Prefix"/>, in its own cache), and how many of those are done.
/// </summary>
internal sealed class PendingJoin(int[] fullBlocks, int prefix, KvCache? side) : IDisposable
{
    public int[] FullBlocks { get; } = fullBlocks;
    public int Prefix { get; } = prefix;
    public KvCache? Side { get; } = side;
    public int Done { get; set; }
    public bool Ready => Done >= Prefix;

    public void Dispose() => Side?.Dispose();
}
