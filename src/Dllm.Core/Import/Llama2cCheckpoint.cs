using System.Text.Json.Nodes;

namespace Dllm.Import;

/// <summary>
/// A llama2.c model file (legacy "version 0" layout): 7 int32 hyper-parameters, then fp32 arrays in
/// a fixed order. A negative vocab_size means the classifier is stored separately (unshared).
/// </summary>
public sealed record Llama2cCheckpoint(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen, bool SharedClassifier, float[] Data)
{
    public int HeadSize => Dim / Heads;
    public int KvDim => KvHeads * HeadSize;

    public static Llama2cCheckpoint Read(string path)
    {
        if (!File.Exists(path)) throw new DllmException($"llama2.c model not found: {path}");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 28) throw new DllmException($"{path}: too short for a llama2.c header ({bytes.Length} bytes)");
        if (BitConverter.ToUInt32(bytes, 0) == 0x616b3432)
            throw new DllmException($"{path}: a llama2.c 'ak42' versioned export (version {BitConverter.ToInt32(bytes, 4)}); only the legacy version-0 layout (export.py --version 0) is supported");
        var h = new int[7];
        for (var i = 0; i < 7; i++) h[i] = BitConverter.ToInt32(bytes, 4 * i);
        var (dim, hidden, layers, heads, kvHeads, vocab, seqLen) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
        var shared = vocab > 0;
        if (vocab == int.MinValue)   // has no positive counterpart: Math.Abs would throw
            throw new DllmException($"{path}: implausible llama2.c header vocab_size={vocab}");
        vocab = Math.Abs(vocab);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0 || dim % heads != 0 || heads % kvHeads != 0)
            throw new DllmException($"{path}: implausible llama2.c header dim={dim} hidden_dim={hidden} n_layers={layers} n_heads={heads} n_kv_heads={kvHeads} vocab_size={vocab} seq_len={seqLen}");
        var floats = (bytes.Length - 28) / 4;
        var checkpoint = new Llama2cCheckpoint(dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared, []);
        var needed = checkpoint.ExpectedFloats();
        if (floats != needed && floats != needed - (Int128)seqLen * checkpoint.HeadSize)  // freq_cis tables are optional for us
            throw new DllmException($"{path}: holds {floats} floats after the header but the header implies {needed}; the file is truncated or not a legacy llama2.c model");
        var data = new float[floats];
        Buffer.BlockCopy(bytes, 28, data, 0, floats * 4);
        return checkpoint with { Data = data };
    }

    /// <summary>In 128 bits: a fuzzed header's sizes multiply past a long and could wrap onto the file's length.</summary>
    private Int128 ExpectedFloats()
    {
        Int128 d = Dim, l = Layers;
        var total = (Int128)VocabSize * d          // token_embedding
            + l * d                                 // rms_att
            + l * d * d + 2 * l * KvDim * d + l * d * d   // wq, wk, wv, wo
            + l * d                                 // rms_ffn
            + 3 * l * HiddenDim * d                 // w1, w2, w3
            + d                                     // rms_final
            + (Int128)SeqLen * HeadSize;            // freq_cis_real + freq_cis_imag (each seq_len * head_size / 2)
        return SharedClassifier ? total : total + (Int128)VocabSize * d;
    }

    /// <summary>The HF LlamaForCausalLM config.json for this model.</summary>
    public JsonObject HfConfig() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["vocab_size"] = VocabSize,
        ["hidden_size"] = Dim,
        ["intermediate_size"] = HiddenDim,
        ["num_hidden_layers"] = Layers,
        ["num_attention_heads"] = Heads,
        ["num_key_value_heads"] = KvHeads,
        ["max_position_embeddings"] = SeqLen,
        ["rms_norm_eps"] = 1e-5,                 // llama2.c's rmsnorm epsilon
        ["rope_theta"] = 10000.0,
        ["hidden_act"] = "silu",
        ["tie_word_embeddings"] = SharedClassifier,
        ["attention_bias"] = false,
        ["bos_token_id"] = 1,
        ["eos_token_id"] = 2,
        ["torch_dtype"] = "float32",
    };
}
