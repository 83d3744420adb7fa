using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>Token embedding table [vocab, hidden].</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public Embedding(long vocab, long dim, Placement at) : base(nameof(Embedding))
    {
        weight = at.Empty(vocab, dim);
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor tokens) => weight.index_select(0, tokens.reshape(-1)).reshape([.. tokens.shape, weight.shape[1]]);
}
