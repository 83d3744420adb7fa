using Dllm.Config;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Import;

/// <summary>
/// Turns a llama2.c model + tokenizer into an HF Llama checkpoint folder. llama2.c rotates
/// interleaved pairs (2j, 2j+1) of each head; HF Llama rotates halves (j, j + d/2), so the q and k
/// rows are permuted per head exactly as HF's own Llama converter does.
/// </summary>
public static class Llama2cImporter
{
    public static void Import(string modelPath, string tokenizerPath, string outputDirectory)
    {
        var checkpoint = Llama2cCheckpoint.Read(modelPath);
        var tokenizer = Llama2cTokenizerImporter.Import(tokenizerPath);
        if (tokenizer.VocabSize != checkpoint.VocabSize)
            throw new DllmException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {checkpoint.VocabSize}: they do not belong together");
        var config = ModelConfigReader.Read(checkpoint.HfConfig().ToJsonString(), modelPath);
        using var model = ModelFactory.Create(config, Placement.Cpu32);
        using (no_grad())
        using (NewDisposeScope())   // holds the whole-file arrays and their per-layer views
        {
            var weights = model.state_dict();
            foreach (var (name, value) in Tensors(checkpoint))
            {
                if (!weights.TryGetValue(name, out var target))
                    throw new InvalidOperationException($"import produced unknown tensor {name}");
                target.copy_(value.reshape(target.shape));
            }
        }
        ModelSaver.Save(model, tokenizer, outputDirectory);
    }

    /// <summary>HF tensor name and value for every array in the file, in file order.</summary>
    private static IEnumerable<(string Name, Tensor Value)> Tensors(Llama2cCheckpoint c)
    {
        var offset = 0L;
        Tensor Take(params long[] shape)
        {
            var count = shape.Aggregate(1L, (a, b) => a * b);
            var t = tensor(c.Data.AsSpan((int)offset, (int)count).ToArray(), shape);
            offset += count;
            return t;
        }
        int d = c.Dim, l = c.Layers, kv = c.KvDim, h = c.HiddenDim;
        yield return ("model.embed_tokens.weight", Take(c.VocabSize, d));
        var rmsAtt = Take(l, d);
        var wq = Take(l, d, d);
        var wk = Take(l, kv, d);
        var wv = Take(l, kv, d);
        var wo = Take(l, d, d);
        var rmsFfn = Take(l, d);
        var w1 = Take(l, h, d);
        var w2 = Take(l, d, h);
        var w3 = Take(l, h, d);
        for (var i = 0; i < l; i++)
        {
            var p = $"model.layers.{i}.";
            yield return (p + "input_layernorm.weight", rmsAtt[i]);
            yield return (p + "self_attn.q_proj.weight", InterleavedToHalves(wq[i], c.Heads));
            yield return (p + "self_attn.k_proj.weight", InterleavedToHalves(wk[i], c.KvHeads));
            yield return (p + "self_attn.v_proj.weight", wv[i]);
            yield return (p + "self_attn.o_proj.weight", wo[i]);
            yield return (p + "post_attention_layernorm.weight", rmsFfn[i]);
            yield return (p + "mlp.gate_proj.weight", w1[i]);
            yield return (p + "mlp.down_proj.weight", w2[i]);
            yield return (p + "mlp.up_proj.weight", w3[i]);
        }
        yield return ("model.norm.weight", Take(d));
        if (!c.SharedClassifier)
        {
            offset += (long)c.SeqLen * c.HeadSize;   // skip freq_cis_real/imag
            yield return ("lm_head.weight", Take(c.VocabSize, d));
        }
    }

    /// <summary>Per head, rows (2j, 2j+1) become rows (j, j + d/2): w.view(H, d/2, 2, in).transpose(1, 2).</summary>
    internal static Tensor InterleavedToHalves(Tensor w, int heads)
    {
        long rows = w.shape[0], cols = w.shape[1];
        return w.view(heads, rows / heads / 2, 2, cols).transpose(1, 2).reshape(rows, cols);
    }
}
