using Dllm.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>Pre-norm decoder layer: h += attn(norm(h)); h += ffn(norm(h)).</summary>
public sealed class DecoderLayer : nn.Module
{
    private readonly RmsNorm _inputNorm;
    private readonly AttentionBlock _attention;
    private readonly RmsNorm _postNorm;
    private readonly nn.Module<Tensor, Tensor> _ffn;

    /// <param name="attentionName">The checkpoint's name for the attention submodule ("self_attn" or "attention").</param>
    public DecoderLayer(ModelConfig c, AttentionBlock attention, string attentionName, nn.Module<Tensor, Tensor> ffn, Placement at)
        : base(nameof(DecoderLayer))
    {
        _inputNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        _attention = attention;
        _postNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, at);
        _ffn = ffn;
        register_module("input_layernorm", _inputNorm);
        register_module(attentionName, _attention);
        register_module("post_attention_layernorm", _postNorm);
        register_module("mlp", _ffn);
    }

    // Children are registered by hand under their checkpoint names; stop TorchSharp from also
    // registering the backing fields by reflection.
    protected override void RegisterComponents() { }

    public nn.Module<Tensor, Tensor> Ffn => _ffn;

    public Tensor Forward(Tensor h, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        h = h + _attention.Forward(_inputNorm.forward(h), ctx);
        h = h + _ffn.forward(_postNorm.forward(h));
        return h.MoveToOuterDisposeScope();
    }
}
