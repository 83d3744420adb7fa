using Dllm.Attention;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Generation;

/// <summary>
/// Autoregressive decoding with a KV cache: prefill the left-padded prompts once, then one forward
/// per new token for the sequences still running. A finished sequence leaves the batch (its cache
/// rows are dropped). Yields one <see cref="DecodeStep"/> per decoding forward.
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
        foreach (var o in perSequence) o.Validate();
        var options = perSequence[0];
        using var batch = PromptBatch.Create(prompts, options.PadTokenId, perSequence.Max(o => o.MaxNewTokens), model.Config.MaxPositionEmbeddings, model.Placement.Device);
        var generators = perSequence.Select(o => Sampler.NewGenerator(o.Sampling.Seed)).ToList();
        var generated = prompts.Select(_ => new List<int>()).ToArray();
        var active = Enumerable.Range(0, prompts.Count).ToList();    // batch row -> sequence index
        var maxNew = batch.MaxNewTokens;
        var limits = perSequence.Select(o => Math.Min(o.MaxNewTokens, maxNew)).ToArray();
        var stops = options.StopTokenIds.ToHashSet();

        using var cache = new KvCache(model.Config.NumLayers, batch.Width + maxNew);
        // Gradients are off per forward, never across a yield: the caller runs between steps with its own mode.
        Tensor? valid = null, nextPositions = null, logits = null;
        try
        {
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var mask = AttentionMasks.WithPadding(AttentionMasks.Causal(batch.Width, device: batch.Tokens.device), batch.Valid);
                logits = DecodeProfile.Prefill(profile, () => model.Forward(batch.Tokens, batch.Positions, mask, cache, logitsForLast: 1))
                    .squeeze(1).MoveToOuterDisposeScope().DetachFromDisposeScope();
                valid = batch.Valid.alias().DetachFromDisposeScope();
                nextPositions = batch.Positions.narrow(1, batch.Width - 1, 1).add(1).DetachFromDisposeScope();
            }

            for (var step = 0; step < maxNew && active.Count > 0; step++)
            {
                cancel.ThrowIfCancellationRequested();
                int[] tokens;
                float[] confidences;
                using (var scope = NewDisposeScope())
                {
                    var (t, c) = Sampler.Pick(logits!, active.Select(s => perSequence[s].Sampling).ToList(), active.Select(s => generators[s]).ToList());
                    tokens = t.cpu().data<long>().Select(x => (int)x).ToArray();
                    confidences = c.cpu().data<float>().ToArray();
                }

                var updates = new List<SequenceUpdate>(active.Count);
                var keep = new List<long>();
                for (var row = 0; row < active.Count; row++)
                {
                    var seq = active[row];
                    var position = generated[seq].Count;
                    generated[seq].Add(tokens[row]);
                    FinishReason? finish = null;
                    var length = -1;
                    if (stops.Contains(tokens[row])) { finish = FinishReason.Stop; length = position; }
                    else if (stopWhen?.Invoke(seq, generated[seq]) == true) { finish = FinishReason.Stop; length = position + 1; }
                    else if (position + 1 >= limits[seq]) { finish = FinishReason.Length; length = position + 1; }
                    else keep.Add(row);
                    updates.Add(new SequenceUpdate(seq, [position], [tokens[row]], [confidences[row]], finish, length));
                }
                yield return new DecodeStep(step + 1, updates, step, 1);
                if (keep.Count == 0) break;

                using (var scope = NewDisposeScope())
                using (no_grad())
                {
                    var rows = keep.ToArray();
                    var next = tensor(rows.Select(r => (long)tokens[r]).ToArray(), device: batch.Tokens.device).unsqueeze(1);  // [B', 1]
                    if (rows.Length != active.Count)
                    {
                        var index = tensor(rows, device: batch.Tokens.device);
                        cache.KeepRows(rows);
                        Swap(ref valid, valid!.index_select(0, index));
                        Swap(ref nextPositions, nextPositions!.index_select(0, index));
                        active = rows.Select(r => active[(int)r]).ToList();
                    }
                    Swap(ref valid, cat([valid!, ones(valid!.shape[0], 1, dtype: ScalarType.Bool, device: valid.device)], 1));
                    var stepMask = valid!.unsqueeze(1).unsqueeze(1);                               // [B', 1, 1, S]
                    var positions = nextPositions;
                    var stepLogits = DecodeProfile.Forward(profile, () => model.Forward(next, positions, stepMask, cache).squeeze(1));
                    Swap(ref logits, stepLogits);
                    Swap(ref nextPositions, nextPositions!.add(1));
                }
            }
        }
        finally
        {
            valid?.Dispose();
            nextPositions?.Dispose();
            logits?.Dispose();
        }
    }

    private static void Swap(ref Tensor? slot, Tensor value)
    {
        var old = slot;
        slot = value.DetachFromDisposeScope();
        if (!ReferenceEquals(old, slot)) old?.Dispose();
    }
}
