using Dllm.Config;
using Dllm.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>Builds the module tree for a config, with the family's tensor names. Parameters are uninitialised.</summary>
public static class ModelFactory
{
    public static CausalLM Create(ModelConfig c, Placement at)
    {
        Runtime.TorchRuntime.EnsureLoaded();
        var bailing = c.Family == ModelFamily.BailingMoe;
        var layers = new List<DecoderLayer>(c.NumLayers);
        for (var i = 0; i < c.NumLayers; i++)
        {
            AttentionBlock attention = bailing ? new FusedQkvAttention(c, i, at) : new SplitQkvAttention(c, i, at);
            nn.Module<Tensor, Tensor> ffn = c.IsMoeLayer(i) ? new MoeBlock(c, at) : new SwiGlu(c.HiddenSize, c.IntermediateSize, at);
            layers.Add(new DecoderLayer(c, attention, bailing ? "attention" : "self_attn", ffn, at));
        }
        var backbone = new Backbone(
            bailing ? "word_embeddings" : "embed_tokens",
            new Embedding(c.VocabSize, c.HiddenSize, at),
            layers,
            new RmsNorm(c.HiddenSize, c.RmsNormEps, at));
        return new CausalLM(c, backbone, at);
    }
}
