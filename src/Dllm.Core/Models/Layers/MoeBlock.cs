using Dllm.Config;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>
/// Sparse MoE FFN: routed SwiGLU experts (weighted sum in fp32) plus unscaled shared expert(s).
/// Tokens are grouped by expert so each expert runs once per forward on the rows routed to it.
/// </summary>
public sealed class MoeBlock : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate")] private readonly MoeRouter _router;
    [ComponentName(Name = "experts")] private readonly ModuleList<SwiGlu> _experts;
    [ComponentName(Name = "shared_experts")] private readonly SwiGlu? _shared;
    private readonly int _topK;

    public MoeBlock(ModelConfig c, Placement at) : base(nameof(MoeBlock))
    {
        var moe = c.Moe!;
        _topK = moe.NumExpertsPerToken;
        _router = new MoeRouter(c, at);
        _experts = new ModuleList<SwiGlu>();
        for (var e = 0; e < moe.NumExperts; e++) _experts.Add(new SwiGlu(c.HiddenSize, moe.MoeIntermediateSize, at));
        if (moe.NumSharedExperts is not null) _shared = new SwiGlu(c.HiddenSize, moe.SharedExpertIntermediateSize, at);
        RegisterComponents();
    }

    public MoeRouter Router => _router;
    public IReadOnlyList<SwiGlu> Experts => _experts.ToList();
    public SwiGlu? Shared => _shared;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var flat = x.reshape(-1, shape[^1]);                                     // [N, H]
        var n = flat.shape[0];
        var (weights, experts) = _router.Route(flat);                             // [N, k]
        var assignment = experts.reshape(-1);                                     // [N*k]
        var tokenOf = arange(n, device: x.device).repeat_interleave(_topK);      // [N*k]
        var order = assignment.argsort();
        var counts = assignment.bincount(null, _experts.Count).cpu().data<long>().ToArray();
        var sortedTokens = tokenOf.index_select(0, order);
        var sortedWeights = weights.reshape(-1).index_select(0, order).unsqueeze(1);
        var routed = zeros(n, shape[^1], dtype: ScalarType.Float32, device: x.device);
        long start = 0;
        for (var e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            var rows = sortedTokens.narrow(0, start, counts[e]);
            var y = _experts[e].forward(flat.index_select(0, rows)).to_type(ScalarType.Float32);
            routed.index_add_(0, rows, y * sortedWeights.narrow(0, start, counts[e]), 1);
            start += counts[e];
        }
        var output = routed.to_type(x.dtype);
        if (_shared is not null) output = output + _shared.forward(flat);
        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}
