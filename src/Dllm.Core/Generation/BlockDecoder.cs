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
        foreach (var o in perSequence) o.Validate();
        block.Validate();
        var b = block.BlockSize;
        var editing = block.Editing;
        var labels = model.Config.Diffusion?.Labels ?? LabelPosition.Same;
        var layout = BlockLayout.Create(prompts, b, perSequence.Max(o => o.MaxNewTokens), model.Config.MaxPositionEmbeddings, perSequence[0].PadTokenId, labels);
        var stops = perSequence[0].StopTokenIds.ToHashSet();
        var rows = prompts.Select((_, i) => new Row(i, layout.Tails[i], Math.Min(perSequence[i].MaxNewTokens, layout.MaxNewTokens),
            perSequence[i].Sampling, Sampler.NewGenerator(perSequence[i].Sampling.Seed))).ToList();
        using var forward = BlockForward.Create(model, layout, labels, block.UseCache, profile);
        using var credit = block.Credit is { } c ? new CreditLedger(c) : null;
        var forwards = 0;

        for (var blockIndex = 0; rows.Count > 0; blockIndex++)
        {
            foreach (var r in rows) r.StartBlock(b, maskTokenId, blockIndex == 0);
            credit?.StartBlock();
            for (var step = 0; ; step++)
            {
                cancel.ThrowIfCancellationRequested();
                // Every row's window goes through the forward (the batch shares it), but only rows whose block still
                // needs one draw tokens, so a row's random stream does not depend on its batchmates.
                var drawing = rows.Where(r => editing is null ? r.NeedsForward(stops) : r.BeginEditingStep()).ToArray();
                if (drawing.Length == 0) break;
                var (tokens, confidence) = Predict(forward, rows, drawing, step, maskTokenId, credit);
                forwards++;
                var updates = new List<SequenceUpdate>(drawing.Length);
                for (var k = 0; k < drawing.Length; k++)
                {
                    var r = drawing[k];
                    if (editing is not null)
                    {
                        updates.Add(r.EditingStep(tokens.AsSpan(k * b, b), confidence.AsSpan(k * b, b), block, editing, step));
                        continue;
                    }
                    var slots = SelectTransfers(r.Undecided, confidence.AsSpan(k * b, b), block, step);
                    foreach (var s in slots) r.Decide(s, tokens[k * b + s]);
                    if (block.StopFill) r.FillAfterStop(stops);
                    updates.Add(new SequenceUpdate(r.Sequence, slots.Select(s => r.Generated.Count + s - r.FixedSlots).ToArray(),
                        slots.Select(s => tokens[k * b + s]).ToArray(), slots.Select(s => confidence[k * b + s]).ToArray()));
                }
                yield return new DecodeStep(forwards, updates, rows[0].Generated.Count, b - rows[0].FixedSlots);
            }

            // The block is decided: keep its tokens, let finished rows leave, commit the rest with the next forward.
            var finished = new List<SequenceUpdate>();
            var keep = new List<int>();
            for (var i = 0; i < rows.Count; i++)
            {
                if (rows[i].EndBlock(stops, stopWhen) is { } done) finished.Add(done);
                else keep.Add(i);
            }
            if (finished.Count > 0) yield return new DecodeStep(forwards, finished, rows[0].Generated.Count - b, b);
            if (keep.Count < rows.Count) forward.KeepRows(keep);
            rows = keep.Select(i => rows[i]).ToList();
            forward.Advance(rows.Select(r => r.Window).ToArray());
        }
    }

    /// <summary>One forward over every row's window; the drawing rows' picks and confidences, flattened [drawing x B].</summary>
    private static (int[] Tokens, float[] Confidence) Predict(BlockForward forward, List<Row> rows, Row[] drawing, int step, int maskTokenId, CreditLedger? credit)
    {
        using var scope = NewDisposeScope();
        var logits = forward.Logits(rows.Select(r => r.Window).ToArray(), step == 0);        // [R, B, V]
        // The model must never "predict" MASK: that slot would stay undecided forever.
        logits.select(-1, maskTokenId).fill_(float.NegativeInfinity);
        var drawingRows = tensor(drawing.Select(r => (long)rows.IndexOf(r)).ToArray(), device: logits.device);
        if (drawing.Length < rows.Count) logits = logits.index_select(0, drawingRows);
        if (credit is not null)
        {
            var masked = tensor(drawing.SelectMany(r => r.Undecided).ToArray(), [drawing.Length, drawing[0].Undecided.Length], device: logits.device);
            logits = credit.Fuse(logits, masked, drawingRows, rows.Count, step);
        }
        var b = logits.shape[1];
        var (t, c) = Sampler.Pick(logits.reshape(drawing.Length * b, -1),
            drawing.SelectMany(r => Enumerable.Repeat(r.Sampling, (int)b)).ToList(),
            drawing.SelectMany(r => Enumerable.Repeat(r.Generator, (int)b)).ToList());
        return (t.cpu().data<long>().Select(x => (int)x).ToArray(), c.cpu().data<float>().ToArray());
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
    private sealed class Row(int sequence, int[] tail, int limit, SamplingOptions sampling, Generator generator)
    {
        public int Sequence { get; } = sequence;
        public SamplingOptions Sampling { get; } = sampling;
        public Generator Generator { get; } = generator;
        public int[] Window { get; private set; } = [];
        public bool[] Undecided { get; private set; } = [];
        public int FixedSlots { get; private set; }
        public List<int> Generated { get; } = [];

        public void StartBlock(int b, int maskId, bool first)
        {
            (_postSteps, _hadMasks, _blockDone) = (0, false, false);
            FixedSlots = first ? tail.Length : 0;
            Window = new int[b];
            Undecided = new bool[b];
            for (var s = 0; s < b; s++)
            {
                Window[s] = s < FixedSlots ? tail[s] : maskId;
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
/// The credit matrix of credit decoding for the current block: [R, B, V] on the device, reset at every block (rows
/// only leave the batch between blocks). Only slots still masked earn credit, as in dInfer.
/// </summary>
internal sealed class CreditLedger(CreditOptions options) : IDisposable
{
    private Tensor? _credit;

    public void StartBlock()
    {
        _credit?.Dispose();
        _credit = null;
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
