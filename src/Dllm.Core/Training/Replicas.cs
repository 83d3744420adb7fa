using Dllm.Models;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Dllm.Training;

/// <summary>
/// Data parallelism inside one process, for CPUs: copies of the model that share its weights (the same storage, so
/// every optimizer step reaches them at once) but keep their own gradients, so that several micro-batches run
/// forward and backward at the same time, one per CPU thread (or group of threads), for models too small to keep
/// several threads busy in one operation. On 2 cores it gains little: the demo's SFT+CAP step took 0.9x the time of
/// one model on two threads, its AR step the same time (docs/benchmarks.md); hosts with many cores stand to gain
/// more, since threads per operation scale worse there. The gradients are added to the model's in replica order, so a run is
/// deterministic, and equal to the same micro-batches run one after another up to the order of float additions.
/// </summary>
internal sealed class Replicas : IDisposable
{
    private readonly CausalLM _model;
    private readonly CausalLM[] _copies;            // replica r > 0 is _copies[r - 1]; replica 0 is the model itself
    private readonly Parameter[] _own;
    private readonly Parameter[][] _theirs;
    private readonly int _threadsEach;

    public Replicas(CausalLM model, int count)
    {
        if (model.Placement.Device.type != TorchSharp.DeviceType.CPU)
            throw new DllmException($"--replicas runs micro-batches on CPU threads, not on {model.Placement.Device}: use one replica there (--grad-accum still works)");
        _model = model;
        _own = model.parameters().ToArray();
        _copies = new CausalLM[count - 1];
        _theirs = new Parameter[count - 1][];
        // Built outside the scope below, which would otherwise dispose the copies' own parameters with it.
        for (var i = 0; i < _copies.Length; i++) _copies[i] = ModelFactory.Create(model.Config, model.Placement);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var source = model.state_dict();
        for (var i = 0; i < _copies.Length; i++)
        {
            var copy = _copies[i];
            foreach (var (name, tensor) in copy.state_dict())
            {
                if (!source.TryGetValue(name, out var shared) || !shared.shape.SequenceEqual(tensor.shape))
                    throw new InvalidOperationException($"a replica's {name} does not match the model's (was the model changed after it was built?)");
                tensor.set_(shared);
            }
            copy.train();
            _theirs[i] = copy.parameters().ToArray();
        }
        _threadsEach = Math.Max(1, get_num_threads() / count);
    }

    /// <summary>
    /// Runs <paramref name="work"/>(replica, r) for every replica at once, replica 0 (the model) on this thread, with the
    /// intra-op threads split between them; returns the results in replica order once all have finished.
    /// </summary>
    public T[] InParallel<T>(Func<CausalLM, int, T> work)
    {
        var before = get_num_threads();
        set_num_threads(_threadsEach);
        var others = new Task<T>[_copies.Length];
        try
        {
            for (var i = 0; i < others.Length; i++)
            {
                var r = i + 1;
                others[i] = Task.Run(() =>
                {
                    set_num_threads(_threadsEach);   // a pool thread keeps whatever count it last had
                    return work(_copies[r - 1], r);
                });
            }
            T first;
            try { first = work(_model, 0); }
            finally
            {
                // The others use this step's batches: they finish before anything is disposed.
                try { Task.WaitAll(others); } catch (AggregateException) { }
            }
            var failed = others.FirstOrDefault(t => t.IsFaulted);
            if (failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failed.Exception!.InnerExceptions[0]).Throw();
            return [first, .. others.Select(t => t.Result)];
        }
        finally { set_num_threads(before); }
    }

    /// <summary>Adds every replica's gradients to the shared model's, replica by replica, and zeroes the replicas'.</summary>
    public void AddGradientsToModel()
    {
        using var scope = NewDisposeScope();   // each .grad read is a new handle
        using var noGrad = no_grad();
        foreach (var theirs in _theirs)
            for (var p = 0; p < _own.Length; p++)
            {
                if (theirs[p].grad is not { } g) continue;
                if (_own[p].grad is { } mine) mine.add_(g);
                else _own[p].grad = g.clone();
                g.zero_();
            }
    }

    public void Dispose()
    {
        foreach (var copy in _copies) copy.Dispose();
    }
}
