using Dllm.Attention;
using Dllm.Models;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>
/// LLaDA2.1's reference <c>generate</c> with token editing, transcribed as a test oracle: batch 1, greedy,
/// the whole canvas [0, block end) recomputed every forward under the block-lower-triangular mask, blocks
/// at absolute multiples of B. Per block, each iteration:
///   1. notes which slots of the block are MASK (the "active" slots) and keeps a copy of the block;
///      if none is MASK, post_steps += 1, and if post_steps &gt; max_post_steps the block ends (no forward);
///   2. runs a forward and takes the argmax token and its probability at every slot of the block;
///   3. mask filling: every active slot whose probability is strictly above the threshold, if there are at
///      least num_to_transfer (1) of them, else the num_to_transfer most probable active slots;
///   4. editing: every non-active, non-prompt slot whose token differs from the copy and whose probability
///      is strictly above the editing threshold;
///   5. writes both sets; if the block had no MASK at step 1 and nothing was edited, the block ends.
/// After a block, with eos_early_stop, decoding ends if the generated part has no MASK and holds EOS.
/// The result is cut at the first EOS. The reference's <c>steps</c> argument is computed and never used,
/// so no step schedule appears here.
/// Deliberate difference kept from dllm's decoder (docs/formats.md): MASK's logit is -inf before the
/// argmax unless <paramref name="pickMask"/>; ties go to the leftmost slot, as torch.topk does on CPU.
/// </summary>
internal static class Llada21Reference
{
    public static List<int> Generate(CausalLM model, int[] prompt, int mask, int blockLength, double threshold, double editingThreshold,
        int maxPostSteps, int genLength, int eos, out int forwards, bool eosEarlyStop = true, bool pickMask = false, int numToTransfer = 1)
    {
        using var noGrad = no_grad();
        forwards = 0;
        var p = prompt.Length;
        var numBlocks = (p + genLength + blockLength - 1) / blockLength;
        var x = prompt.Concat(Enumerable.Repeat(mask, numBlocks * blockLength - p)).ToArray();
        for (var nb = p / blockLength; nb < numBlocks; nb++)
        {
            int start = nb * blockLength, end = start + blockLength;
            var promptInBlock = Enumerable.Range(start, blockLength).Select(i => i < p).ToArray();
            var postSteps = 0;
            while (true)
            {
                var old = x[start..end];
                var active = old.Select(t => t == mask).ToArray();
                if (!active.Any(a => a)) postSteps++;
                if (postSteps > maxPostSteps) break;

                float[] conf;
                long[] x0;
                using (var scope = NewDisposeScope())
                {
                    forwards++;
                    var pos = arange(end);
                    var logits = model.Forward(tensor(x.Take(end).Select(v => (long)v).ToArray()).unsqueeze(0), pos, AttentionMasks.BlockCausal(pos, pos, blockLength))[0]
                        .narrow(0, start, blockLength);
                    if (!pickMask) logits.select(-1, mask).fill_(float.NegativeInfinity);
                    var (pv, pi) = logits.softmax(-1).max(-1);
                    conf = pv.data<float>().ToArray();
                    x0 = pi.data<long>().ToArray();
                }

                var transfer = new bool[blockLength];
                var activeSlots = Enumerable.Range(0, blockLength).Where(j => active[j]).ToList();
                if (activeSlots.Count > 0)
                {
                    var high = activeSlots.Where(j => conf[j] > threshold).ToList();
                    var chosen = high.Count >= numToTransfer ? high
                        : activeSlots.OrderByDescending(j => conf[j]).ThenBy(j => j).Take(Math.Min(numToTransfer, activeSlots.Count)).ToList();
                    foreach (var j in chosen) transfer[j] = true;
                }
                var edit = Enumerable.Range(0, blockLength)
                    .Select(j => !active[j] && !promptInBlock[j] && conf[j] > editingThreshold && x0[j] != old[j]).ToArray();
                for (var j = 0; j < blockLength; j++)
                    if (transfer[j] || edit[j]) x[start + j] = (int)x0[j];
                if (activeSlots.Count == 0 && !edit.Any(e => e)) break;
            }
            if (eosEarlyStop)
            {
                var generatedSoFar = x[p..end];
                if (!generatedSoFar.Contains(mask) && generatedSoFar.Contains(eos)) break;
            }
        }
        var generated = x.Skip(p).Take(genLength).ToList();
        var at = generated.IndexOf(eos);
        return at >= 0 ? generated.Take(at).ToList() : generated;
    }
}
