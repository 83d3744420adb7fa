using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dllm.Models.Layers;

/// <summary>down(silu(gate(x)) * up(x)): the FFN of every supported family, and each MoE expert.</summary>
public sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private readonly Linear _gate;
    [ComponentName(Name = "up_proj")] private readonly Linear _up;
    [ComponentName(Name = "down_proj")] private readonly Linear _down;

    public SwiGlu(long hidden, long intermediate, Placement at) : base(nameof(SwiGlu))
    {
        _gate = new Linear(hidden, intermediate, false, at);
        _up = new Linear(hidden, intermediate, false, at);
        _down = new Linear(intermediate, hidden, false, at);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _down.forward(nn.functional.silu(_gate.forward(x)) * _up.forward(x)).MoveToOuterDisposeScope();
    }
}
