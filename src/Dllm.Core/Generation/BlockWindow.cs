using Dllm.Attention;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// The model side of block decoding: turns the current windows into logits. With the cache, the
/// prompt's full blocks are prefilled once and each finished block is committed by the first forward
/// of the next one; without it, every step recomputes the whole sequence under the block-causal
/// mask, as the reference generate does. Both see exactly the same attention pattern.
/// </summary>
internal sealed class BlockWindow : IDisposable
{
    private readonly CausalLM _model;
    private readonly int _b;
    private readonly bool _cached;
    private readonly Device _device;
    private readonly KvCache? _cache;
    private List<long> _windowStart;               // absolute position of each row's window slot 0
    private List<bool[]> _keyValid;                // per row: validity of every committed column
    private List<List<int>> _committed;            // per row: every committed token (uncached mode recomputes them)
    private List<List<long>> _committedPositions;
    private int[][]? _pending;                     // finished windows not yet in the cache

    public BlockWindow(CausalLM model, BlockLayout layout, bool cached, Device device, DecodeProfile? profile = null)
    {
        (_model, _b, _cached, _device) = (model, layout.BlockSize, cached, device);
        _windowStart = layout.FirstWindowStart.Select(x => (long)x).ToList();
        _keyValid = layout.PrefillValid.Select(v => v.ToArray()).ToList();
        _committed = layout.Prefill.Select(p => p.ToList()).ToList();
        _committedPositions = layout.PrefillPositions.Select(p => p.ToList()).ToList();
        if (!cached || layout.PrefillWidth == 0)
        {
            if (cached) _cache = new KvCache(model.Config.NumLayers, layout.MaxNewTokens + 2L * _b);
            return;
        }
        _cache = new KvCache(model.Config.NumLayers, layout.PrefillWidth + layout.MaxNewTokens + 2L * _b);
        using var scope = NewDisposeScope();
        var tokens = Rows(_committed);
        var positions = Rows(_committedPositions);
        var mask = AttentionMasks.WithPadding(AttentionMasks.BlockCausal(positions, positions, _b), Rows(_keyValid));
        DecodeProfile.Prefill(profile, () => _model.Hidden(_model.Embed(tokens), positions, mask, _cache));   // fills the cache; no logits needed
    }

    /// <summary>Logits [R, B, V] for the rows' current windows (CPU token arrays).</summary>
    public Tensor Logits(int[][] windows, bool firstStepOfBlock)
    {
        using var scope = NewDisposeScope();
        var r = windows.Length;
        var windowPositions = Enumerable.Range(0, r).Select(i => Enumerable.Range(0, _b).Select(j => _windowStart[i] + j).ToList()).ToList();
        Tensor logits;
        if (_cached)
        {
            var commitPending = firstStepOfBlock && _pending is not null;
            var tokenRows = commitPending ? windows.Select((w, i) => _pending![i].Concat(w).ToList()).ToList() : windows.Select(w => w.ToList()).ToList();
            var positionRows = commitPending
                ? windowPositions.Select(p => p.Select(x => x - _b).Concat(p).ToList()).ToList()
                : windowPositions;
            var t = tokenRows[0].Count;
            // Committed keys: as valid as recorded. New keys: the pending block (if any) then the window,
            // block-causal between the two.
            var local = tensor(Enumerable.Range(0, t).Select(j => (long)(j / _b)).ToArray(), device: _device);
            var within = AttentionMasks.BlockCausal(local, local, 1);                                     // [T, T]
            var past = ones(t, _cache!.Length, dtype: ScalarType.Bool, device: _device);
            var mask = AttentionMasks.WithPadding(cat([past, within], 1), cat([Rows(_keyValid), ones(r, t, dtype: ScalarType.Bool, device: _device)], 1));
            var h = _model.Hidden(_model.Embed(Rows(tokenRows)), Rows(positionRows), mask, _cache, commit: commitPending ? _b : 0);
            logits = _model.Logits(h.narrow(1, t - _b, _b));
            if (commitPending)
            {
                for (var i = 0; i < r; i++) _keyValid[i] = _keyValid[i].Concat(Enumerable.Repeat(true, _b)).ToArray();
                _pending = null;
            }
        }
        else
        {
            var tokens = _committed.Select((c, i) => c.Concat(windows[i]).ToList()).ToList();
            var positions = _committedPositions.Select((c, i) => c.Concat(windowPositions[i]).ToList()).ToList();
            var valid = _keyValid.Select(v => v.Concat(Enumerable.Repeat(true, _b)).ToList()).ToList();
            var pos = Rows(positions);
            var mask = AttentionMasks.WithPadding(AttentionMasks.BlockCausal(pos, pos, _b), Rows(valid));
            var h = _model.Hidden(_model.Embed(Rows(tokens)), pos, mask);
            logits = _model.Logits(h.narrow(1, h.shape[1] - _b, _b));
        }
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>The rows' windows are final: they become context, and the next window starts B later.</summary>
    public void Advance(int[][] finishedWindows)
    {
        for (var i = 0; i < finishedWindows.Length; i++)
        {
            if (!_cached)
            {
                _committed[i].AddRange(finishedWindows[i]);
                _committedPositions[i].AddRange(Enumerable.Range(0, _b).Select(j => _windowStart[i] + j));
                _keyValid[i] = _keyValid[i].Concat(Enumerable.Repeat(true, _b)).ToArray();
            }
            _windowStart[i] += _b;
        }
        if (_cached) _pending = finishedWindows;
    }

    /// <summary>Drops rows whose sequences finished (before <see cref="Advance"/> for the survivors).</summary>
    public void KeepRows(IReadOnlyList<int> keep)
    {
        _windowStart = keep.Select(i => _windowStart[i]).ToList();
        _keyValid = keep.Select(i => _keyValid[i]).ToList();
        _committed = keep.Select(i => _committed[i]).ToList();
        _committedPositions = keep.Select(i => _committedPositions[i]).ToList();
        if (_cache is not null && _cache.BatchSize > 0 && keep.Count > 0) _cache.KeepRows(keep.Select(i => (long)i).ToArray());
    }

    private Tensor Rows<T>(IEnumerable<IEnumerable<T>> rows) where T : struct
    {
        var list = rows.Select(r => r.ToArray()).ToArray();
        long[] shape = [list.Length, list.Length == 0 ? 0 : list[0].Length];
        return typeof(T) == typeof(bool)
            ? tensor(list.SelectMany(r => r.Cast<bool>()).ToArray(), shape, device: _device)
            : tensor(list.SelectMany(r => r.Select(x => Convert.ToInt64(x))).ToArray(), shape, device: _device);
    }

    public void Dispose() => _cache?.Dispose();
}
