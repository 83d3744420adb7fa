using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>
/// AdamW over fp32 master weights. When the model computes in bf16/fp16, the optimizer keeps an fp32
/// copy of every parameter, reads the low-precision gradients into fp32, updates the masters and
/// writes them back rounded; in fp32 the model's parameters are the masters. Written here rather
/// than taken from TorchSharp so its state (moments, masters, step) saves and restores bit for bit.
/// </summary>
public sealed class AdamW : IDisposable
{
    private sealed record Slot(string Name, Parameter Param, Tensor Master, Tensor ExpAvg, Tensor ExpAvgSq, bool Decay);

    private readonly List<Slot> _slots = [];
    private readonly AdamWOptions _o;

    public AdamW(IEnumerable<(string Name, Parameter Param)> parameters, AdamWOptions options)
    {
        _o = options;
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters)
        {
            if (!p.requires_grad) continue;
            var master = p.dtype == ScalarType.Float32 ? p : p.detach().to_type(ScalarType.Float32).DetachFromDisposeScope();
            _slots.Add(new Slot(name, p, master,
                zeros_like(master).DetachFromDisposeScope(), zeros_like(master).DetachFromDisposeScope(),
                Decay: p.dim() >= 2));
        }
    }

    /// <summary>Updates taken so far (bias correction uses it).</summary>
    public long StepCount { get; private set; }

    public bool HasSeparateMasters => _slots.Any(s => !ReferenceEquals(s.Master, s.Param));

    /// <summary>The fp32 master value of each parameter, by name.</summary>
    public IEnumerable<(string Name, Tensor Master)> Masters => _slots.Select(s => (s.Name, s.Master));

    /// <summary>Global L2 norm of all gradients (fp32), then scales them down to <paramref name="maxNorm"/> if above (0 = no clipping).</summary>
    public double ClipGradients(double maxNorm)
    {
        using var norm = GradientNorm();
        if (norm is null) return 0;
        var total = norm.item<float>();
        ClipTo(total, maxNorm);
        return total;
    }

    /// <summary>
    /// Global L2 norm of all gradients (fp32) as a 0-d tensor on their device, or null when no parameter has a gradient:
    /// the trainer reads it together with the step's loss, in one transfer.
    /// </summary>
    public Tensor? GradientNorm()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = Gradients();
        try
        {
            return grads.Count == 0 ? null : stack(grads.Select(g => g.to_type(ScalarType.Float32).pow(2).sum()).ToArray()).sum().sqrt().MoveToOuterDisposeScope();
        }
        finally
        {
            foreach (var g in grads) g.Dispose();
        }
    }

    /// <summary>Scales the gradients down to <paramref name="maxNorm"/> when their norm <paramref name="total"/> is above it (0 = no clipping).</summary>
    public void ClipTo(float total, double maxNorm)
    {
        if (!(maxNorm > 0 && total > maxNorm && float.IsFinite(total))) return;
        var scale = maxNorm / (total + 1e-6);
        using var noGrad = no_grad();
        var grads = Gradients();
        foreach (var g in grads) g.mul_(scale);
        foreach (var g in grads) g.Dispose();
    }

    /// <summary>Wrappers of the parameters' gradients (dispose them; the gradients stay on the parameters).</summary>
    private List<Tensor> Gradients() => _slots.Select(s => s.Param.grad).OfType<Tensor>().ToList();

    public void Step(double learningRate)
    {
        using var noGrad = no_grad();
        StepCount++;
        var bias1 = 1 - Math.Pow(_o.Beta1, StepCount);
        var bias2 = 1 - Math.Pow(_o.Beta2, StepCount);
        foreach (var s in _slots)
        {
            using var grad = s.Param.grad;
            if (grad is null) continue;
            using var scope = NewDisposeScope();
            var g = grad.to_type(ScalarType.Float32);
            if (s.Decay && _o.WeightDecay > 0) s.Master.mul_(1 - learningRate * _o.WeightDecay);
            s.ExpAvg.mul_(_o.Beta1).add_(g, alpha: 1 - _o.Beta1);
            s.ExpAvgSq.mul_(_o.Beta2).addcmul_(g, g, value: 1 - _o.Beta2);
            var denom = (s.ExpAvgSq / bias2).sqrt_().add_(_o.Epsilon);
            s.Master.addcdiv_(s.ExpAvg, denom, value: -learningRate / bias1);
            if (!ReferenceEquals(s.Master, s.Param)) s.Param.copy_(s.Master);
        }
    }

    public void ZeroGrad()
    {
        // Each read of .grad wraps the gradient in a new handle: the scope disposes them so long runs
        // do not pile them up (the gradients themselves stay on the parameters).
        using var scope = NewDisposeScope();
        foreach (var s in _slots) s.Param.grad?.zero_();
    }

    /// <summary>Everything needed to continue exactly: moments and (when separate) masters, by name.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors()
    {
        foreach (var s in _slots)
        {
            yield return new($"exp_avg.{s.Name}", s.ExpAvg);
            yield return new($"exp_avg_sq.{s.Name}", s.ExpAvgSq);
            if (!ReferenceEquals(s.Master, s.Param)) yield return new($"master.{s.Name}", s.Master);
        }
    }

    public void LoadState(Func<string, Tensor?> read, long stepCount)
    {
        using var noGrad = no_grad();
        foreach (var s in _slots)
        {
            using var scope = NewDisposeScope();
            s.ExpAvg.copy_(read($"exp_avg.{s.Name}") ?? throw new DllmException($"optimizer state lacks exp_avg.{s.Name}"));
            s.ExpAvgSq.copy_(read($"exp_avg_sq.{s.Name}") ?? throw new DllmException($"optimizer state lacks exp_avg_sq.{s.Name}"));
            if (!ReferenceEquals(s.Master, s.Param))
            {
                s.Master.copy_(read($"master.{s.Name}") ?? throw new DllmException($"optimizer state lacks master.{s.Name}"));
                s.Param.copy_(s.Master);
            }
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var s in _slots)
        {
            s.ExpAvg.Dispose();
            s.ExpAvgSq.Dispose();
            if (!ReferenceEquals(s.Master, s.Param)) s.Master.Dispose();
        }
    }
}
