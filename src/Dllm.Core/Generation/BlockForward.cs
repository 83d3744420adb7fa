using Dllm.Attention;
using Dllm.Config;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// How prompts map onto blocks: each prompt's full blocks (prefilled, left-padded to a common width
/// <see cref="PrefillWidth"/>) and its tail (the fixed start of its first generation window).
/// </summary>
internal sealed record BlockLayout(int BlockSize, int PrefillWidth, long[] Prefill, bool[] PrefillValid, long[] PrefillPositions,
    int[][] Tails, int[] FirstWindowStart, int MaxNewTokens)
{
    /// <summary>The context positions blocks can fill: the last block must end inside the context.</summary>
    public static int UsableContext(int context, int b) => context / b * b;

    public static BlockLayout Create(IReadOnlyList<IReadOnlyList<int>> prompts, int b, int maxNewTokens, int context, int padId, LabelPosition labels)
    {
        if (prompts.Count == 0) throw new DllmException("no prompts to decode");
        // A shifted model predicts each token from the one before it: the first generated token needs a prompt token.
        if (labels == LabelPosition.Shift && prompts.Any(p => p.Count == 0))
            throw new DllmException("a prompt is empty: this model predicts each token from the one before it, so it needs at least one prompt token (e.g. BOS)");
        var usable = UsableContext(context, b);
        var longest = prompts.Max(p => p.Count);
        var room = usable - longest;
        if (room <= 0)
            throw new DllmException($"the prompt has {longest} tokens but the model's context is {context} ({usable} usable with block size {b}); shorten it to leave room for at least one block");
        var full = prompts.Select(p => p.Count / b * b).ToArray();
        var width = full.Max();
        var prefill = new long[prompts.Count * width];
        var valid = new bool[prompts.Count * width];
        var positions = new long[prompts.Count * width];
        for (var i = 0; i < prompts.Count; i++)
        {
            var pad = width - full[i];
            for (var c = 0; c < width; c++)
            {
                prefill[i * width + c] = c < pad ? padId : prompts[i][c - pad];
                valid[i * width + c] = c >= pad;
                positions[i * width + c] = Math.Max(0, c - pad);
            }
        }
        var tails = prompts.Select((p, i) => p.Skip(full[i]).ToArray()).ToArray();
        return new BlockLayout(b, width, prefill, valid, positions, tails, full, Math.Min(maxNewTokens, room));
    }
}

/// <summary>
/// The model side of block decoding: the logits [R, B, V] that predict the slots of the rows' current
/// windows. Same-position labels read the window's own outputs. Shifted labels read slot s from the
/// output at s - 1: inside the window from the noisy window itself, and for slot 0 from the clean output
/// of the last committed position, which never sees the window (METHOD.md §2, token shift).
/// </summary>
internal abstract class BlockForward : IDisposable
{
    protected readonly CausalLM Model;
    protected readonly int B;
    protected readonly bool Shifted;
    protected readonly Device Device;
    protected readonly DecodeProfile? Profile;
    /// <summary>Absolute position of each row's window slot 0 [R].</summary>
    protected Tensor WindowStart;

    protected BlockForward(CausalLM model, BlockLayout layout, LabelPosition labels, DecodeProfile? profile)
    {
        (Model, B, Shifted, Device, Profile) = (model, layout.BlockSize, labels == LabelPosition.Shift, model.Placement.Device, profile);
        WindowStart = tensor(layout.FirstWindowStart.Select(x => (long)x).ToArray(), device: Device).DetachFromDisposeScope();
    }

    public static BlockForward Create(CausalLM model, BlockLayout layout, LabelPosition labels, bool cached, DecodeProfile? profile) =>
        cached ? new CachedBlockForward(model, layout, labels, profile) : new RecomputedBlockForward(model, layout, labels, profile);

    /// <summary>Logits [R, B, V] for the rows' current windows (CPU token arrays).</summary>
    public abstract Tensor Logits(int[][] windows, bool firstStepOfBlock);

    /// <summary>The surviving rows' windows are final: they become context, and the next windows start B later.</summary>
    public abstract void Advance(int[][] finishedWindows);

    /// <summary>Drops rows whose sequences finished (called before <see cref="Advance"/> with the survivors).</summary>
    public void KeepRows(IReadOnlyList<int> keep)
    {
        using var index = tensor(keep.Select(i => (long)i).ToArray(), device: Device);
        Replace(ref WindowStart, WindowStart.index_select(0, index));
        KeepRows(index, keep);
    }

    protected abstract void KeepRows(Tensor index, IReadOnlyList<int> keep);

    protected Tensor WindowPositions() => WindowStart.unsqueeze(1) + arange(B, device: Device);     // [R, B]

    protected Tensor Tokens(int[][] rows)
    {
        var width = rows.Length == 0 ? 0 : rows[0].Length;
        var flat = new long[rows.Length * width];
        for (var i = 0; i < rows.Length; i++)
            for (var j = 0; j < width; j++) flat[i * width + j] = rows[i][j];
        return tensor(flat, [rows.Length, width], device: Device);
    }

    protected static void Replace(ref Tensor slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        if (!ReferenceEquals(old, slot)) old.Dispose();
    }

    public virtual void Dispose() => WindowStart.Dispose();
}

/// <summary>
/// Cached: the prompts' full blocks are prefilled once; a finished block is committed to the cache by the
/// first forward of the next block, which runs [finished block ; new window] together, so committing costs
/// no extra forward. Steps after the first see the cache and the window only; their mask and positions are
/// built once per block.
/// </summary>
internal sealed class CachedBlockForward : BlockForward
{
    private readonly KvCache _cache;
    private Tensor _keyValid;              // [R, cache length]: false at left padding
    private Tensor? _pending;              // [R, B]: finished windows not yet in the cache
    private Tensor? _slotZero;             // shifted labels: [R, 1, V] logits for slot 0 of the current window
    private (Tensor Positions, Tensor Mask)? _step;   // the current block's later steps

    public CachedBlockForward(CausalLM model, BlockLayout layout, LabelPosition labels, DecodeProfile? profile) : base(model, layout, labels, profile)
    {
        var rows = layout.Tails.Length;
        _cache = new KvCache(model.Config.NumLayers, layout.PrefillWidth + layout.MaxNewTokens + 2L * B);
        using var scope = NewDisposeScope();
        long[] shape = [rows, layout.PrefillWidth];
        var valid = tensor(layout.PrefillValid, shape, device: Device);
        _keyValid = valid.DetachFromDisposeScope();
        if (layout.PrefillWidth == 0) return;
        var tokens = tensor(layout.Prefill, shape, device: Device);
        var positions = tensor(layout.PrefillPositions, shape, device: Device);
        var mask = AttentionMasks.WithPadding(AttentionMasks.BlockCausal(positions, positions, B), valid);
        using var noGrad = no_grad();
        var h = DecodeProfile.Prefill(Profile, () => Model.Hidden(Model.Embed(tokens), positions, mask, _cache));
        // Slot 0 of a first window at a block boundary is predicted by the last prompt token's clean output.
        if (Shifted) _slotZero = Model.Logits(h.narrow(1, layout.PrefillWidth - 1, 1)).DetachFromDisposeScope();
    }

    public override Tensor Logits(int[][] windows, bool firstStepOfBlock)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var window = Tokens(windows);
        Tensor h;
        if (firstStepOfBlock && _pending is not null)
        {
            // [pending ; window]: the pending block sees the cache and itself, the window sees all of that and itself.
            var r = window.shape[0];
            var tokens = cat([_pending, window], 1);                                                   // [R, 2B]
            var positions = cat([WindowPositions() - B, WindowPositions()], 1);
            var mask = AttentionMasks.CachedBlocks(_keyValid, 2, B);
            var all = DecodeProfile.Forward(Profile, () => Model.Hidden(Model.Embed(tokens), positions, mask, _cache, commit: B));
            Replace(ref _keyValid, cat([_keyValid, ones(r, B, dtype: ScalarType.Bool, device: Device)], 1));
            _pending.Dispose();
            _pending = null;
            if (Shifted)
            {
                _slotZero?.Dispose();
                _slotZero = Model.Logits(all.narrow(1, B - 1, 1)).DetachFromDisposeScope();
            }
            h = all.narrow(1, B, B);
        }
        else
        {
            _step ??= StepInputs();
            var (positions, mask) = _step.Value;
            h = DecodeProfile.Forward(Profile, () => Model.Hidden(Model.Embed(window), positions, mask, _cache, commit: 0));
        }
        // Before the first commit with no prefill, every row's slot 0 is prompt tail (never predicted): any logits stand in.
        var logits = Shifted ? cat([_slotZero ?? Model.Logits(h.narrow(1, 0, 1)), Model.Logits(h.narrow(1, 0, B - 1))], 1) : Model.Logits(h);
        return logits.MoveToOuterDisposeScope();
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
        if (finishedWindows.Length == 0) return;
        _pending?.Dispose();
        _pending = Tokens(finishedWindows).DetachFromDisposeScope();
        Replace(ref WindowStart, WindowStart + B);
    }

    protected override void KeepRows(Tensor index, IReadOnlyList<int> keep)
    {
        DropStep();
        if (keep.Count == 0) return;
        Replace(ref _keyValid, _keyValid.index_select(0, index));
        if (_slotZero is { } zero)
        {
            _slotZero = zero.index_select(0, index).DetachFromDisposeScope();
            zero.Dispose();
        }
        if (_cache.BatchSize > 0) _cache.KeepRows(keep.Select(i => (long)i).ToArray());
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
        _pending?.Dispose();
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
    private Tensor _tokens, _positions, _valid;   // committed context [R, T]

    public RecomputedBlockForward(CausalLM model, BlockLayout layout, LabelPosition labels, DecodeProfile? profile) : base(model, layout, labels, profile)
    {
        long[] shape = [layout.Tails.Length, layout.PrefillWidth];
        _tokens = tensor(layout.Prefill, shape, device: Device).DetachFromDisposeScope();
        _positions = tensor(layout.PrefillPositions, shape, device: Device).DetachFromDisposeScope();
        _valid = tensor(layout.PrefillValid, shape, device: Device).DetachFromDisposeScope();
    }

    public override Tensor Logits(int[][] windows, bool firstStepOfBlock)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var r = windows.Length;
        var t = _tokens.shape[1];
        var positions = cat([_positions, WindowPositions()], 1);
        var mask = AttentionMasks.WithPadding(AttentionMasks.BlockCausal(positions, positions, B),
            cat([_valid, ones(r, B, dtype: ScalarType.Bool, device: Device)], 1));
        var h = DecodeProfile.Forward(Profile, () => Model.Hidden(Model.Embed(cat([_tokens, Tokens(windows)], 1)), positions, mask));
        // Shifted: slot s reads position s - 1. With no committed context, every row's slot 0 is prompt tail
        // (never predicted), so any row stands in for it.
        var read = !Shifted ? h.narrow(1, t, B)
            : t > 0 ? h.narrow(1, t - 1, B)
            : cat([h.narrow(1, 0, 1), h.narrow(1, 0, B - 1)], 1);
        return Model.Logits(read).MoveToOuterDisposeScope();
    }

    public override void Advance(int[][] finishedWindows)
    {
        if (finishedWindows.Length == 0) return;
        using var scope = NewDisposeScope();
        var r = finishedWindows.Length;
        Replace(ref _positions, cat([_positions, WindowPositions()], 1));
        Replace(ref _tokens, cat([_tokens, Tokens(finishedWindows)], 1));
        Replace(ref _valid, cat([_valid, ones(r, B, dtype: ScalarType.Bool, device: Device)], 1));
        Replace(ref WindowStart, WindowStart + B);
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
