using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// Block-wise parallel decoding of a diffusion LM (METHOD.md §5) with a KV cache and batches.
///
/// Alignment rule (the reference's): blocks sit at absolute positions 0, B, 2B, ... The prompt's
/// full blocks are prefilled into the cache (block-causal, so each prompt block is bidirectional);
/// the prompt's tail shares the first generation block with B - tail MASKs and stays fixed while
/// they are decoded. Every later block is B MASKs. Because tail + MASKs = B for every prompt, the
/// windows of a batch stay in lockstep.
///
/// Each step predicts every position of the window, unmasks those whose confidence is above the
/// threshold (at least the schedule's minimum, most confident first), and yields what it did. A
/// finished block is committed to the cache by the first forward of the next block, which runs
/// [finished block ; new MASK block] together, so committing costs no extra forward. Decoding stops
/// after the block holding a stop token (tokens after it are dropped) or at the token limit.
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
        var options = perSequence[0];
        var b = block.BlockSize;
        var layout = BlockLayout.Create(prompts, b, perSequence.Max(o => o.MaxNewTokens), model.Config.MaxPositionEmbeddings, options.PadTokenId);
        var limits = perSequence.Select(o => Math.Min(o.MaxNewTokens, layout.MaxNewTokens)).ToArray();
        var stops = options.StopTokenIds.ToHashSet();
        var generators = perSequence.Select(o => Sampler.NewGenerator(o.Sampling.Seed)).ToList();
        var rows = Enumerable.Range(0, prompts.Count).Select(i => new SequenceState(i, layout.Tails[i])).ToList();
        var device = model.Placement.Device;
        using var window = new BlockWindow(model, layout, block.UseCache, device, profile);
        using var noGrad = no_grad();
        var forwards = 0;

        for (var blockIndex = 0; rows.Count > 0; blockIndex++)
        {
            // Window contents on the CPU: fixed prompt tail first (block 0 only), MASKs after it.
            foreach (var r in rows) r.StartBlock(b, maskTokenId, blockIndex == 0);
            for (var step = 0; rows.Any(r => r.NeedsForward(stops, limits[r.Sequence])); step++)
            {
                cancel.ThrowIfCancellationRequested();
                // Every row's window goes through the forward (the batch shares it), but only rows with
                // MASKs left draw samples, so a row's random stream does not depend on its batchmates.
                var drawing = Enumerable.Range(0, rows.Count).Where(i => rows[i].NeedsForward(stops, limits[rows[i].Sequence])).ToArray();
                int[] tokens;
                float[] confidence;
                using (var scope = NewDisposeScope())
                {
                    var windows = rows.Select(r => r.Window).ToArray();
                    var first = step == 0;
                    var logits = DecodeProfile.Forward(profile, () => window.Logits(windows, first));   // [R, B, V]
                    // The model must never "predict" MASK: that slot would stay undecided forever.
                    logits.select(-1, maskTokenId).fill_(float.NegativeInfinity);
                    var active = logits.index_select(0, tensor(drawing.Select(i => (long)i).ToArray(), device: device));
                    var (t, c) = Sampler.Pick(active.reshape(drawing.Length * b, -1),
                        drawing.SelectMany(i => Enumerable.Repeat(perSequence[rows[i].Sequence].Sampling, b)).ToList(),
                        drawing.SelectMany(i => Enumerable.Repeat(generators[rows[i].Sequence], b)).ToList());
                    tokens = t.cpu().data<long>().Select(x => (int)x).ToArray();
                    confidence = c.cpu().data<float>().ToArray();
                }
                forwards++;
                var updates = new List<SequenceUpdate>();
                for (var k = 0; k < drawing.Length; k++)
                {
                    var r = rows[drawing[k]];
                    r.Forwards++;
                    var chosen = SelectTransfers(r.Undecided, confidence.AsSpan(k * b, b), block, step);
                    foreach (var slot in chosen) r.Decide(slot, tokens[k * b + slot]);
                    updates.Add(new SequenceUpdate(r.Sequence,
                        chosen.Select(s => r.Generated.Count + s - r.FixedSlots).ToArray(),
                        chosen.Select(s => tokens[k * b + s]).ToArray(),
                        chosen.Select(s => confidence[k * b + s]).ToArray()));
                }
                yield return new DecodeStep(forwards, updates, rows[0].Generated.Count, b - rows[0].FixedSlots);
            }

            // The block is complete: keep its tokens, decide who stops, commit the rest next forward.
            var finished = new List<SequenceUpdate>();
            var keep = new List<int>();
            for (var i = 0; i < rows.Count; i++)
            {
                var r = rows[i];
                var before = r.Generated.Count;
                // Slots past the token limit may still hold MASK (see NeedsForward); they are never output.
                r.Generated.AddRange(r.Window.Skip(r.FixedSlots).Take(limits[r.Sequence] - before));
                var stopAt = r.Generated.FindIndex(before, t => stops.Contains(t));
                if (stopAt >= 0) finished.Add(Finish(r, FinishReason.Stop, stopAt));
                else if (stopWhen?.Invoke(r.Sequence, r.Generated) == true) finished.Add(Finish(r, FinishReason.Stop, r.Generated.Count));
                else if (r.Generated.Count >= limits[r.Sequence]) finished.Add(Finish(r, FinishReason.Length, limits[r.Sequence]));
                else keep.Add(i);
            }
            if (finished.Count > 0) yield return new DecodeStep(forwards, finished, rows[0].Generated.Count - b, b);
            if (keep.Count < rows.Count) window.KeepRows(keep);
            window.Advance(keep.Select(i => rows[i].Window).ToArray());
            rows = keep.Select(i => rows[i]).ToList();
        }
    }

    private static SequenceUpdate Finish(SequenceState r, FinishReason reason, int length) =>
        new(r.Sequence, [], [], [], reason, Math.Min(length, r.Generated.Count));

    /// <summary>
    /// Which masked slots to unmask this step: every one above the threshold if that meets the
    /// schedule's minimum, else the minimum number of most confident ones (ties: leftmost first).
    /// </summary>
    internal static int[] SelectTransfers(IReadOnlyList<bool> undecided, ReadOnlySpan<float> confidence, BlockDecodeOptions o, int step)
    {
        var conf = confidence.ToArray();
        var active = new List<int>();
        for (var s = 0; s < undecided.Count; s++) if (undecided[s]) active.Add(s);
        var high = active.Where(s => conf[s] > o.Threshold).ToArray();
        var minimum = Math.Min(o.MinimumTransfers(step), active.Count);
        if (high.Length >= minimum && high.Length > 0) return high;
        return active.OrderByDescending(s => conf[s]).ThenBy(s => s).Take(Math.Max(1, minimum)).Order().ToArray();
    }

    /// <summary>One batch row: its window (CPU), what it generated, how many window slots are prompt tail.</summary>
    private sealed class SequenceState(int sequence, int[] tail)
    {
        public int Sequence { get; } = sequence;
        public int[] Window { get; private set; } = [];
        public bool[] Undecided { get; private set; } = [];
        public int FixedSlots { get; private set; }
        public List<int> Generated { get; } = [];
        public int Forwards { get; set; }

        public void StartBlock(int b, int maskId, bool first)
        {
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
        /// Whether this block still needs a forward for this row: some slot that can reach the output is undecided.
        /// Once every slot up to a decided stop token (or up to the token limit) is decided, the output is fixed:
        /// the remaining MASKs would only fill slots that are dropped. Selection among undecided slots is left as it
        /// is (it still sees them), so stopping early changes the forwards spent, never the tokens returned.
        /// </summary>
        public bool NeedsForward(IReadOnlySet<int> stops, int limit)
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
    }
}
