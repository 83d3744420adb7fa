using Dllm.Config;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// Block-wise parallel decoding of a diffusion LM (METHOD.md §5), batched, with a KV cache. It reads
/// side by side with the official LLaDA2.0 <c>generate</c>: blocks at absolute positions 0, B, 2B, ...;
/// per block, each step predicts every slot, unmasks the slots whose confidence is strictly above the
/// threshold (at least the schedule's minimum, most confident first), until the block is decided; then
/// the block is committed and the next one starts. Decoding stops after the block holding a stop token
/// (tokens after it are dropped) or at the token limit.
///
/// Where it differs, it differs in cost only: a prompt's tail shares the first block with B - tail MASKs
/// (so the windows of a batch stay in lockstep), a block ends once its output is fixed (every slot up to a
/// decided stop token, or up to the token limit, is decided), and MASK is never a prediction (the official
/// sampler can pick it and then stalls on that slot). The model side - which logits a window gets - lives
/// in <see cref="BlockForward"/>: cached (the default) or recomputed from scratch each step (the reference).
/// Everything yielded is CPU data.
///
/// With <see cref="BlockDecodeOptions.Editing"/> it reads side by side with the official LLaDA2.1 <c>generate</c>
/// instead: decided slots of the block may be edited, the block is refined after its last MASK, and it ends
/// only as the official loop ends (see <see cref="EditingOptions"/>); its updates stay provisional until then.
/// </summary>
public static class BlockDecoder
{
    public static IEnumerable<DecodeStep> Run(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, DecodeOptions options,
        BlockDecodeOptions block, int maskTokenId, Func<int, IReadOnlyList<int>, bool>? stopWhen = null, CancellationToken cancel = default,
        DecodeProfile? profile = null) =>
        Run(model, prompts, prompts.Select(_ => options).ToList(), block, maskTokenId, stopWhen, cancel, profile);

    /// <summary>One <see cref="DecodeOptions"/> per prompt (token limits and sampling may differ; stop and pad ids are the first's).</summary>
    public static IEnumerable<DecodeStep> Run(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<DecodeOptions> perSequence,
        BlockDecodeOptions block, int maskTokenId, Func<int, IReadOnlyList<int>, bool>? stopWhen = null, CancellationToken cancel = default,
        DecodeProfile? profile = null)
    {
        if (prompts.Count == 0) throw new DllmException("no prompts to decode");
        using var session = new BlockDecodeSession(model, block, maskTokenId, perSequence[0].StopTokenIds, stopWhen, profile);
        for (var i = 0; i < prompts.Count; i++) session.Add(prompts[i], perSequence[i]);
        while (session.Step(cancel) is { } step) yield return step;
    }

    /// <summary>
    /// Which masked slots to unmask this step: every one strictly above the threshold if that meets the
    /// schedule's minimum, else the minimum number of most confident ones (ties: leftmost first).
    /// </summary>
    internal static int[] SelectTransfers(IReadOnlyList<bool> undecided, ReadOnlySpan<float> confidence, BlockDecodeOptions o, int step)
    {
        var conf = confidence.ToArray();
        var active = Enumerable.Range(0, undecided.Count).Where(s => undecided[s]).ToArray();
        var high = active.Where(s => conf[s] > o.Threshold).ToArray();
        var minimum = Math.Min(o.MinimumTransfers(step), active.Length);
        if (high.Length >= minimum && high.Length > 0) return high;
        return active.OrderByDescending(s => conf[s]).ThenBy(s => s).Take(Math.Max(1, minimum)).Order().ToArray();
    }

    /// <summary>One sequence of the batch: its window (CPU), what it generated, how many window slots are prompt tail.</summary>
    internal sealed class Row(int sequence, int[] prompt, int fullBlocks, int limit, SamplingOptions sampling, Generator generator)
    {
        public int Sequence { get; } = sequence;
        public int[] Prompt { get; } = prompt;
        public SamplingOptions Sampling { get; } = sampling;
        public Generator Generator { get; } = generator;
        public int[] Window { get; private set; } = [];
        public bool[] Undecided { get; private set; } = [];
        public int FixedSlots { get; private set; }
        public List<int> Generated { get; } = [];

        private int _blocks;

        public void StartBlock(int b, int maskId)
        {
            (_postSteps, _hadMasks, _blockDone) = (0, false, false);
            FixedSlots = _blocks++ == 0 ? Prompt.Length - fullBlocks : 0;
            Window = new int[b];
            Undecided = new bool[b];
            for (var s = 0; s < b; s++)
            {
                Window[s] = s < FixedSlots ? Prompt[fullBlocks + s] : maskId;
                Undecided[s] = s >= FixedSlots;
            }
        }

        /// <summary>
        /// Whether this block still needs a forward: some slot that can reach the output is undecided. Once every
        /// slot up to a decided stop token (or up to the token limit) is decided, the output is fixed and the
        /// remaining MASKs would only fill dropped slots. This changes the forwards spent, never the tokens returned.
        /// </summary>
        public bool NeedsForward(IReadOnlySet<int> stops)
        {
            var end = Math.Min(Window.Length, FixedSlots + limit - Generated.Count);
            for (var s = FixedSlots; s < end; s++)
            {
                if (Undecided[s]) return true;
                if (stops.Contains(Window[s])) return false;
            }
            return false;
        }

        public void Decide(int slot, int token)
        {
            Window[slot] = token;
            Undecided[slot] = false;
        }

        // LLaDA2.1 token editing (EditingOptions): the block runs the official loop rather than ending once its output
        // looks fixed, since a decided slot (a stop token, or one before it) may still change until the block ends.
        private int _postSteps;
        private bool _hadMasks, _blockDone;

        /// <summary>Whether the block needs this step's forward; counts a refinement step when no MASK is left.</summary>
        public bool BeginEditingStep()
        {
            if (_blockDone) return false;
            _hadMasks = Undecided.Any(u => u);
            if (!_hadMasks) _postSteps++;   // never past the limit: EditingStep ends the block before that
            return true;
        }

        /// <summary>
        /// Applies one forward: MASKs unmask by the threshold rule, and decided non-prompt slots whose predicted token
        /// differs with confidence strictly above the editing threshold are replaced (both judged on the block as it
        /// was before the forward). Updates stay provisional until the block ends; then the whole block is restated.
        /// </summary>
        public SequenceUpdate EditingStep(ReadOnlySpan<int> tokens, ReadOnlySpan<float> confidence, BlockDecodeOptions block, EditingOptions editing, int step)
        {
            var edits = new List<int>();
            for (var s = FixedSlots; s < Window.Length; s++)
                if (!Undecided[s] && confidence[s] > editing.Threshold && tokens[s] != Window[s]) edits.Add(s);
            var chosen = _hadMasks ? SelectTransfers(Undecided, confidence, block, step) : [];
            foreach (var slot in chosen.Concat(edits)) Decide(slot, tokens[slot]);
            // The official loop ends after a MASK-free forward that changed nothing, or when the next step would pass
            // the post-step limit.
            _blockDone = !Undecided.Any(u => u) && ((!_hadMasks && edits.Count == 0) || _postSteps + 1 > editing.MaxPostSteps);
            var slots = _blockDone ? Enumerable.Range(FixedSlots, Window.Length - FixedSlots).ToArray() : chosen.Concat(edits).Order().ToArray();
            var conf = confidence.ToArray();
            return new SequenceUpdate(Sequence, slots.Select(s => Generated.Count + s - FixedSlots).ToArray(),
                slots.Select(s => Window[s]).ToArray(), slots.Select(s => conf[s]).ToArray(), Provisional: !_blockDone);
        }

        /// <summary>Stop fill: every undecided slot after the first decided stop token takes that token (it is never output).</summary>
        public void FillAfterStop(IReadOnlySet<int> stops)
        {
            for (var s = FixedSlots; s < Window.Length; s++)
            {
                if (Undecided[s] || !stops.Contains(Window[s])) continue;
                for (var later = s + 1; later < Window.Length; later++)
                    if (Undecided[later]) Decide(later, Window[s]);
                return;
            }
        }

        /// <summary>Appends the block's tokens; the finishing update if the sequence ends here, else null.</summary>
        public SequenceUpdate? EndBlock(IReadOnlySet<int> stops, Func<int, IReadOnlyList<int>, bool>? stopWhen)
        {
            var before = Generated.Count;
            // Slots past the token limit may still hold MASK (see NeedsForward); they are never output.
            Generated.AddRange(Window.Skip(FixedSlots).Take(limit - before));
            var stopAt = Generated.FindIndex(before, t => stops.Contains(t));
            if (stopAt >= 0) return Finish(FinishReason.Stop, stopAt);
            if (stopWhen?.Invoke(Sequence, Generated) == true) return Finish(FinishReason.Stop, Generated.Count);
            if (Generated.Count >= limit) return Finish(FinishReason.Length, limit);
            return null;
        }

        private SequenceUpdate Finish(FinishReason reason, int length) => new(Sequence, [], [], [], reason, Math.Min(length, Generated.Count));
    }
}

/// <summary>
/// Block decoding as a <see cref="DecodeSession"/>: sequences join at block boundaries once their prompts are
/// prefilled (at once, or a chunk per step while others decode: <see cref="DecodeSession.PrefillChunk"/>) and leave
/// when their block ends them, or at once when cancelled. All rows decode their current
/// block in lockstep: a row whose block is decided waits (its window still goes through the shared forward, but it
/// draws nothing) until every row's block is, then the block ends for all. So a waiting request waits at most one
/// block's steps.
/// </summary>
public sealed class BlockDecodeSession : DecodeSession
{
    private readonly BlockDecodeOptions _block;
    private readonly int _maskTokenId;
    private readonly LabelPosition _labels;
    private readonly BlockForward _forward;
    private readonly CreditLedger? _credit;
    private List<BlockDecoder.Row> _rows = [];
    private bool _inBlock;
    private int _step;

    /// <param name="prefixes">Where joining prompts look for keys and values of a prefix an earlier prompt prefilled (and leave theirs); null: none.</param>
    public BlockDecodeSession(CausalLM model, BlockDecodeOptions block, int maskTokenId, IReadOnlyList<int> stopTokenIds,
        Func<int, IReadOnlyList<int>, bool>? stopWhen = null, DecodeProfile? profile = null, PrefixCache? prefixes = null)
        : base(model, stopTokenIds, stopWhen, profile)
    {
        _labels = model.Config.Labels;
        block.ValidateFor(_labels);
        _block = block;
        _maskTokenId = maskTokenId;
        _forward = BlockForward.Create(model, block.BlockSize, _labels, block.UseCache, profile, prefixes);
        _credit = block.Credit is { } c ? new CreditLedger(c) : null;
    }

    public override int Running => _rows.Count;

    public override long KvCacheBytes => _forward.KvCacheBytes + PrefillStates.OfType<PendingJoin>().Sum(p => p.Side?.AllocatedBytes ?? 0);

    /// <summary>The context positions blocks can fill: blocks sit at absolute multiples of B, and the last must end inside the context.</summary>
    public static int UsableContext(int context, int b) => context / b * b;

    public override int Room(int promptTokens) => UsableContext(Model.Config.MaxPositionEmbeddings, _block.BlockSize) - promptTokens;

    protected override string ContextNote => $" ({UsableContext(Model.Config.MaxPositionEmbeddings, _block.BlockSize)} usable with block size {_block.BlockSize})";

    public override DecodeStep? Step(CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        var b = _block.BlockSize;
        var updates = new List<SequenceUpdate>();
        var leave = new List<int>();
        TakeCancelled(_rows.Select(r => (r.Sequence, r.Generated.Count)).ToList(), updates, leave);
        if (leave.Count > 0) Keep(Enumerable.Range(0, _rows.Count).Except(leave).ToList());
        var prefilled = SpendPrefillBudget(_rows.Count > 0, (j, budget) => _forward.Prefill(Pending(j), budget),
            (joiners, budget) => _forward.PrefillTogether(joiners.Select(Pending), budget));
        while (true)
        {
            if (!_inBlock)
            {
                foreach (var j in WaitingJoiners.Where(j => Pending(j).Ready).ToList()) Join(j);
                if (_rows.Count == 0) return updates.Count > 0 || prefilled > 0 ? new DecodeStep(Forwards, updates, 0, b, 0, prefilled) : null;
                _forward.Ragged = RaggedAttention;
                if (RaggedAttention && _forward.LongestFirst() is { } order) Keep([.. order]);
                foreach (var r in _rows) r.StartBlock(b, _maskTokenId);
                _credit?.StartBlock();
                (_inBlock, _step) = (true, 0);
            }
            // Every row's window goes through the forward (the batch shares it), but only rows whose block still
            // needs one draw tokens, so a row's random stream does not depend on its batchmates.
            var editing = _block.Editing;
            var drawing = _rows.Where(r => editing is null ? r.NeedsForward(Stops) : r.BeginEditingStep()).ToArray();
            if (drawing.Length == 0)
            {
                EndBlock(updates);
                if (updates.Count > 0) return new DecodeStep(Forwards, updates, Math.Max(0, (_rows.FirstOrDefault()?.Generated.Count ?? b) - b), b, 0, prefilled);
                continue;
            }
            var (tokens, confidence) = Predict(drawing);
            NonFiniteLogits.Check(confidence);
            Forwards++;
            foreach (var (r, k) in drawing.Select((r, k) => (r, k)))
            {
                if (editing is not null)
                {
                    updates.Add(r.EditingStep(tokens.AsSpan(k * b, b), confidence.AsSpan(k * b, b), _block, editing, _step));
                    continue;
                }
                var slots = BlockDecoder.SelectTransfers(r.Undecided, confidence.AsSpan(k * b, b), _block, _step);
                foreach (var s in slots) r.Decide(s, tokens[k * b + s]);
                if (_block.StopFill) r.FillAfterStop(Stops);
                updates.Add(new SequenceUpdate(r.Sequence, slots.Select(s => r.Generated.Count + s - r.FixedSlots).ToArray(),
                    slots.Select(s => tokens[k * b + s]).ToArray(), slots.Select(s => confidence[k * b + s]).ToArray()));
            }
            _step++;
            return new DecodeStep(Forwards, updates, _rows[0].Generated.Count, b - _rows[0].FixedSlots, _rows.Count, prefilled);
        }
    }

    /// <summary>The joiner's prompt on its way in (started on first sight: the prefix cache may already hold some of it).</summary>
    private PendingJoin Pending(Joiner j) =>
        Prefilling(j, joiner => _forward.StartJoin(joiner.Prompt[..(joiner.Prompt.Length / _block.BlockSize * _block.BlockSize)]));

    private void Join(Joiner j)
    {
        var full = j.Prompt.Length / _block.BlockSize * _block.BlockSize;
        _forward.Join(Admit<PendingJoin>(j));
        _rows.Add(new BlockDecoder.Row(j.Sequence, j.Prompt, full, j.Options.MaxNewTokens, j.Options.Sampling, Sampler.NewGenerator(j.Options.Sampling.Seed)));
    }

    /// <summary>The block is decided: keep its tokens, let finished rows leave, and queue the rest's windows for commit.</summary>
    private void EndBlock(List<SequenceUpdate> updates)
    {
        var keep = new List<int>();
        for (var i = 0; i < _rows.Count; i++)
        {
            if (_rows[i].EndBlock(Stops, StopWhen) is { } done)
            {
                updates.Add(done);
                _forward.Store(i, _rows[i].Prompt, _rows[i].Generated);
            }
            else keep.Add(i);
        }
        Keep(keep);
        _forward.Advance(_rows.Select(r => r.Window).ToArray());
        _inBlock = false;
    }

    /// <summary>Keeps the given rows, in the given order (rows leave, or are reordered for ragged attention).</summary>
    private void Keep(List<int> keep)
    {
        if (KeepsEveryRow(keep, _rows.Count)) return;
        _forward.KeepRows(keep);
        _credit?.KeepRows(keep);
        _rows = keep.Select(i => _rows[i]).ToList();
    }

    /// <summary>
    /// One forward over every row's window; the drawing rows' picks and confidences, flattened [drawing x B]. Only the
    /// undecided slots go through the LM head and the sampler (a decided slot's prediction is never read; the others
    /// hold token -1 and confidence 0), except under editing, which may rewrite decided slots, and credit, whose
    /// ledger spans the block.
    /// </summary>
    private (int[] Tokens, float[] Confidence) Predict(BlockDecoder.Row[] drawing)
    {
        using var scope = NewDisposeScope();
        var outputs = _forward.Outputs(_rows.Select(r => r.Window).ToArray(), _step == 0);      // [R, B, H]
        var everyRowDraws = drawing.Length == _rows.Count;
        var drawingRows = everyRowDraws && _credit is null ? null : tensor(drawing.Select(r => (long)_rows.IndexOf(r)).ToArray(), device: outputs.device);
        if (!everyRowDraws) outputs = outputs.index_select(0, drawingRows!);
        var b = (int)outputs.shape[1];
        var everySlot = _block.Editing is not null || _credit is not null;
        var slots = new List<int>(drawing.Length * b);
        for (var k = 0; k < drawing.Length; k++)
            for (var s = 0; s < b; s++)
                if (everySlot || drawing[k].Undecided[s]) slots.Add(k * b + s);
        Tensor logits;
        if (everySlot)
        {
            logits = Head(outputs);                                                             // [D, B, V]
            if (_credit is not null)
            {
                var masked = tensor(drawing.SelectMany(r => r.Undecided).ToArray(), [drawing.Length, b], device: logits.device);
                logits = _credit.Fuse(logits, masked, drawingRows!, _rows.Count, _step);
            }
            logits = logits.reshape(drawing.Length * b, -1);
        }
        else
        {
            using var at = tensor(slots.Select(i => (long)i).ToArray(), device: outputs.device);
            logits = Head(outputs.reshape(drawing.Length * b, -1).index_select(0, at));      // [N, V]
        }
        var (t, c) = Sampler.Pick(logits, slots.Select(i => drawing[i / b].Sampling).ToList(), slots.Select(i => drawing[i / b].Generator).ToList());
        var (picked, confidence) = (t.cpu().data<long>().ToArray(), c.cpu().data<float>().ToArray());
        var tokens = new int[drawing.Length * b];
        var conf = new float[drawing.Length * b];
        Array.Fill(tokens, -1);
        for (var j = 0; j < slots.Count; j++) (tokens[slots[j]], conf[slots[j]]) = ((int)picked[j], confidence[j]);
        return (tokens, conf);
    }

    /// <summary>The LM head (model work, timed as such), with MASK ruled out: a slot predicting MASK would stay undecided forever.</summary>
    private Tensor Head(Tensor outputs)
    {
        var logits = DecodeProfile.Head(Profile, () => Model.Logits(outputs));
        logits.select(-1, _maskTokenId).fill_(float.NegativeInfinity);
        return logits;
    }

    public override void Dispose()
    {
        base.Dispose();
        _credit?.Dispose();
        _forward.Dispose();
    }
}

/// <summary>
/// The credit matrix of credit decoding for the current block: [R, B, V] on the device, reset at every block (rows
/// join only between blocks; a cancelled row leaves mid-block). Only slots still masked earn credit, as in dInfer.
/// </summary>
internal sealed class CreditLedger(CreditOptions options) : IDisposable
{
    private Tensor? _credit;

    public void StartBlock()
    {
        _credit?.Dispose();
        _credit = null;
    }

    public void KeepRows(IReadOnlyList<int> keep)
    {
        if (_credit is not { } credit) return;
        using var index = tensor(keep.Select(i => (long)i).ToArray(), device: credit.device);
        _credit = credit.index_select(0, index).DetachFromDisposeScope();
        credit.Dispose();
    }

    /// <summary>Adds this step's credit for the drawing rows and returns their fused logits [D, B, V].</summary>
    public Tensor Fuse(Tensor logits, Tensor masked, Tensor drawingRows, int rows, int step)
    {
        using var scope = NewDisposeScope();
        _credit ??= zeros([rows, logits.shape[1], logits.shape[2]], dtype: ScalarType.Float32, device: logits.device).DetachFromDisposeScope();
        var credit = _credit.index_select(0, drawingRows);
        if (step > 0) credit.mul_(options.Decay);
        var (top, index) = logits.to_type(ScalarType.Float32).softmax(-1).max(-1);                       // [D, B]
        var earned = top.pow(options.Boost) * masked.to_type(ScalarType.Float32);
        credit.scatter_add_(2, index.unsqueeze(-1), earned.unsqueeze(-1));
        _credit.index_copy_(0, drawingRows, credit);
        return (logits + options.Alpha * (credit + 1).log()).MoveToOuterDisposeScope();
    }

    public void Dispose() => _credit?.Dispose();
}
