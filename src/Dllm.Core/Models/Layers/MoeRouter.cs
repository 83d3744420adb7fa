using Dllm.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>
/// The Ling 2.0 / LLaDA2.0 router ("mlp.gate"): fp32 sigmoid scores; the expert bias steers only the
/// choice of experts (group-limited top-k over the sum of each group's two best biased scores), while
/// the mixing weights are the unbiased scores of the chosen experts, renormalised and scaled.
/// </summary>
public sealed class MoeRouter : nn.Module
{
    private readonly Parameter weight;
    private readonly MoeSettings _moe;

    public MoeRouter(ModelConfig c, Placement at) : base(nameof(MoeRouter))
    {
        _moe = c.Moe!;
        weight = at.Empty(_moe.NumExperts, c.HiddenSize);
        RegisterComponents();
        // A persistent buffer, not a parameter: aux-loss-free balancing adjusts it outside the gradient.
        register_buffer("expert_bias", zeros(_moe.NumExperts, dtype: ScalarType.Float32, device: at.Device), persistent: true);
    }

    public Parameter Weight => weight;
    public Tensor ExpertBias => get_buffer("expert_bias")!;

    /// <summary>x [N, H] -> (weights [N, k] fp32, expert ids [N, k]).</summary>
    public (Tensor Weights, Tensor Experts) Route(Tensor x)
    {
        using var scope = NewDisposeScope();
        var n = x.shape[0];
        int experts = _moe.NumExperts, groups = _moe.NumGroups, k = _moe.NumExpertsPerToken;
        var scores = nn.functional.linear(x.to_type(ScalarType.Float32), weight.to_type(ScalarType.Float32)).sigmoid(); // [N, E]
        var biased = scores + ExpertBias;
        var choice = biased;
        if (groups > 1 && _moe.TopKGroups < groups)
        {
            var perGroup = experts / groups;
            var groupScores = biased.view(n, groups, perGroup).topk(Math.Min(2, perGroup), dim: -1).values.sum(-1); // [N, G]
            var keptGroups = groupScores.topk(_moe.TopKGroups, dim: -1, sorted: false).indexes;                       // [N, kg]
            var groupMask = zeros(n, groups, dtype: ScalarType.Bool, device: x.device).scatter_(1, keptGroups, ones_like(keptGroups, dtype: ScalarType.Bool));
            var expertMask = groupMask.unsqueeze(-1).expand(n, groups, perGroup).reshape(n, experts);
            choice = biased.masked_fill(expertMask.logical_not(), double.NegativeInfinity);
        }
        var chosen = choice.topk(k, dim: -1).indexes;                 // [N, k]
        var w = scores.gather(1, chosen);                             // unbiased scores
        if (_moe.NormTopKProb && k > 1) w = w / (w.sum(-1, keepdim: true) + 1e-20);
        w = w * _moe.RoutedScalingFactor;
        return (w.MoveToOuterDisposeScope(), chosen.MoveToOuterDisposeScope());
    }
}
