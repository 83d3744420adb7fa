using System.Diagnostics;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Diffusion;
using Dllm.IO;
using Dllm.Models;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>
/// The training loop shared by pre-training, conversion and fine-tuning: micro-batches with gradient
/// accumulation, gradient clipping, AdamW on fp32 masters, skipping of NaN and spiking steps,
/// periodic validation and atomic checkpoints, per-step metrics. Every random draw of step s comes
/// from a generator seeded by (seed, s, micro-batch), and the data position, optimizer and spike
/// window are checkpointed, so a resumed run continues bit for bit where it stopped.
/// </summary>
public sealed class Trainer
{
    private readonly CausalLM _model;
    private readonly TextTokenizer _tokenizer;
    private readonly ITrainingObjective _objective;
    private readonly IBatchSource _data;
    private readonly IValidator? _validator;
    private readonly TrainerOptions _o;
    private readonly CheckpointStore _store;
    private readonly ITrainingObserver _observer;
    private readonly string _metricsPath;
    private readonly Func<long, ModelConfig, ModelConfig>? _checkpointConfig;

    /// <param name="checkpointConfig">The config a checkpoint records after a given number of steps, from the model's
    /// (a conversion's checkpoint is a dLLM with the labels and the block it was last trained at, though the model it
    /// started from is not); null: the model's config.</param>
    public Trainer(CausalLM model, TextTokenizer tokenizer, ITrainingObjective objective, IBatchSource data, IValidator? validator,
        TrainerOptions options, string runDirectory, ITrainingObserver? observer = null, Func<long, ModelConfig, ModelConfig>? checkpointConfig = null)
    {
        _checkpointConfig = checkpointConfig;
        options.Validate();
        (_model, _tokenizer, _objective, _data, _validator, _o) = (model, tokenizer, objective, data, validator, options);
        _observer = observer ?? NullObserver.Instance;
        Directory.CreateDirectory(runDirectory);
        _store = new CheckpointStore(runDirectory);
        _metricsPath = Path.Combine(runDirectory, "metrics.jsonl");
    }

    public CheckpointStore Checkpoints => _store;

    /// <summary>Trains from step 0, or from <paramref name="resumeFrom"/> (a checkpoint of this run).</summary>
    public TrainingOutcome Run(CheckpointInfo? resumeFrom = null, CancellationToken cancel = default)
    {
        var lr = _o.ResolveLearningRate();
        using var optimizer = new AdamW(_model.named_parameters().Select(p => (p.name, p.parameter)), _o.AdamW);
        var recent = new List<double>();
        long start = 0, skipped = 0, tokensSeen = 0;
        if (resumeFrom is not null)
        {
            var state = CheckpointStore.ReadState(resumeFrom.Path);
            start = state["step"]!.GetValue<long>();
            skipped = state["skipped"]?.GetValue<long>() ?? 0;
            tokensSeen = state["tokens"]?.GetValue<long>() ?? 0;
            recent = state["recent_losses"]!.AsArray().Select(n => n!.GetValue<double>()).ToList();
            _data.RestorePosition(state["data"]!);
            using var reader = SafetensorsFile.Open(Path.Combine(resumeFrom.Path, "trainer", "optimizer.safetensors"));
            optimizer.LoadState(name => reader.Entries.ContainsKey(name) ? reader.Load(name, ScalarType.Float32, _model.Placement.Device) : null,
                state["optimizer_steps"]!.GetValue<long>());
            TruncateMetrics(start);
            _observer.Message($"resumed from {resumeFrom.Path} at step {start}");
        }
        else if (File.Exists(_metricsPath)) File.Delete(_metricsPath);

        _observer.Started(start, _o.Steps, _objective.Name);
        _model.train();
        using var replicas = _o.Replicas > 1 ? new Replicas(_model, _o.Replicas) : null;
        var clock = Stopwatch.StartNew();
        var stopAt = _o.StopAfter is { } n ? Math.Min(_o.Steps, start + n) : _o.Steps;
        // The step the newest checkpoint holds (or the start): an interruption right after a save, or before this
        // invocation's first step, has nothing new to write; rewriting would only widen the window a kill can hit.
        var saved = start;
        for (var step = start; step < _o.Steps; step++)
        {
            if (cancel.IsCancellationRequested || step == stopAt)
            {
                if (saved != step) Save(step, optimizer, recent, skipped, tokensSeen, metric: null);
                return cancel.IsCancellationRequested ? TrainingOutcome.Cancelled : TrainingOutcome.Stopped;
            }
            var stepClock = Stopwatch.StartNew();
            var noise = EmbeddingNoise.Sigma(_o.EmbeddingNoise, step, _o.EmbeddingNoiseSteps);
            optimizer.ZeroGrad();
            var (loss, tokens, extra, norm) = ComputeGradients(step, noise, optimizer, replicas);
            var gradNorm = double.NaN;
            // A new block size is a new objective, whose loss level the old median says nothing about: conversion's
            // first steps past block 1 have 4-6x the AR loss, and the guard skipped 20-50 of them in a row.
            if (step > 0 && _objective.BlockSizeAt(step) != _objective.BlockSizeAt(step - 1)) recent.Clear();
            var skip = !double.IsFinite(loss) || IsSpike(loss, recent);
            if (!skip)
            {
                gradNorm = norm;
                skip = !double.IsFinite(gradNorm);
                if (!skip) optimizer.ClipTo(norm, _o.ClipNorm);
            }
            if (skip)
            {
                skipped++;
                optimizer.ZeroGrad();
                _observer.Message($"skipped step {step}: loss {loss:G4}" + (recent.Count > 0 ? $" (recent median {Median(recent):G4})" : "") + (double.IsFinite(gradNorm) || double.IsNaN(gradNorm) ? "" : ", gradient not finite"));
            }
            else optimizer.Step(lr.At(step));
            // Skipped losses count too: the median shrugs off a lone spike, but a loss that stays higher (after a bad
            // update, or as batches get harder) becomes the new level within half a window. Counting only accepted
            // steps froze fine-tuning runs for 60 steps in a row once their loss had risen.
            if (double.IsFinite(loss))
            {
                recent.Add(loss);
                if (recent.Count > _o.SpikeWindow) recent.RemoveAt(0);
            }
            tokensSeen += tokens;
            var seconds = stepClock.Elapsed.TotalSeconds;
            var metrics = new StepMetrics(step, loss, lr.At(step), _objective.BlockSizeAt(step), gradNorm, tokens, tokens / Math.Max(seconds, 1e-9), clock.Elapsed.TotalSeconds, skip, noise,
                extra.Count > 0 ? extra : null);
            _observer.Step(metrics);

            var done = step + 1;
            double? metric = null;
            var checkpointDue = done % _o.CheckpointEvery == 0 || done == _o.Steps;
            // Every checkpoint gets a validation score so that merging can rank them.
            if (_validator is not null && (done % _o.EvalEvery == 0 || checkpointDue))
            {
                metric = Validate();
                _observer.Evaluated(done, _validator.Metric, metric.Value);
            }
            // The step's line carries the validation taken after it, so `dllm plot --metric valid` can draw it.
            AppendMetrics(metrics, metric is { } v ? (_validator!.Metric, v) : null);
            if (checkpointDue)
            {
                Save(done, optimizer, recent, skipped, tokensSeen, metric);
                saved = done;
            }
        }
        return TrainingOutcome.Completed;
    }

    /// <summary>
    /// Forward and backward over the step's micro-batches, gradients accumulated. The losses, token counts, extras and
    /// the gradient norm stay on the device until the end, then come to the host in one transfer: a GPU step waits for
    /// its queue once, not twice per micro-batch. Every number is what a read per micro-batch gives (float32 and
    /// integer counts are exact in float64, and the sums run in the same order). With replicas, each round of
    /// micro-batches runs at once, one per replica, and the replicas' gradients are added to the model's in replica order.
    /// </summary>
    private (double Loss, long Tokens, Dictionary<string, double> Extra, float GradNorm) ComputeGradients(long step, double noise, AdamW optimizer, Replicas? replicas)
    {
        using var stepScope = NewDisposeScope();
        var results = new List<MicroResult>();
        try
        {
            for (var first = 0; first < _o.GradientAccumulation; first += _o.Replicas)
            {
                // Batches are drawn here, in micro-batch order, so the data a step sees does not depend on the replica count.
                var batches = Enumerable.Range(0, _o.Replicas).Select(_ => _data.Next(_model.Placement.Device)).ToList();
                try
                {
                    if (_o.Replicas == 1) results.Add(Micro(_model, batches[0], step, first, noise));
                    else results.AddRange(replicas!.InParallel((model, r) => Micro(model, batches[r], step, first + r, noise)));
                }
                finally { foreach (var b in batches) b.Dispose(); }
                replicas?.AddGradientsToModel();
            }
            var norm = optimizer.GradientNorm() ?? zeros(1, device: _model.Placement.Device);
            var parts = results.Select(r => r.Loss).Concat(results.Select(r => r.Tokens)).Concat(results.SelectMany(r => r.Extras.Select(e => e.Value)))
                .Append(norm.reshape(1)).Select(t => t.to_type(ScalarType.Float64));
            var host = cat(parts.ToArray()).cpu().data<double>().ToArray();
            var n = _o.GradientAccumulation;
            double lossSum = 0;
            long tokens = 0;
            for (var i = 0; i < n; i++)
            {
                lossSum += host[i];
                tokens += (long)host[n + i];
            }
            var extra = new Dictionary<string, double>();
            var at = 2 * n;
            foreach (var (name, _) in results.SelectMany(r => r.Extras))
                extra[name] = extra.GetValueOrDefault(name) + host[at++] / n;
            return (lossSum / n, tokens, extra, (float)host[^1]);
        }
        finally { foreach (var r in results) r.Dispose(); }
    }

    /// <summary>One micro-batch's forward and backward on <paramref name="model"/>; what it returns belongs to no dispose scope.</summary>
    private MicroResult Micro(CausalLM model, Data.TokenBatch batch, long step, int micro, double noise)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(SeededRandom.StepSeed(_o.Seed, step, micro));
        var result = _objective.Compute(model, batch, new ObjectiveContext(step, generator, noise));
        (result.Loss / _o.GradientAccumulation).backward();
        return new MicroResult(result.Loss.detach().reshape(1).DetachFromDisposeScope(), result.Tokens.reshape(1).DetachFromDisposeScope(),
            (result.Extra ?? new Dictionary<string, Tensor>()).Select(e => (e.Key, e.Value.detach().reshape(1).DetachFromDisposeScope())).ToList());
    }

    /// <summary>A micro-batch's loss, token count and extras, each [1], owned by whoever holds this.</summary>
    private sealed record MicroResult(Tensor Loss, Tensor Tokens, List<(string Name, Tensor Value)> Extras) : IDisposable
    {
        public void Dispose()
        {
            Loss.Dispose();
            Tokens.Dispose();
            foreach (var (_, value) in Extras) value.Dispose();
        }
    }

    /// <summary>The weights to save: fp32 masters where the model computes in lower precision.</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> SaveableWeights(CausalLM model, AdamW? optimizer)
    {
        var weights = model.state_dict();
        if (optimizer is null || !optimizer.HasSeparateMasters) return weights;
        var masters = optimizer.Masters.ToDictionary(m => m.Name, m => m.Master);
        return weights.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, masters.GetValueOrDefault(kv.Key) ?? kv.Value));
    }

    private double Validate()
    {
        _model.eval();
        try
        {
            using var noGrad = no_grad();
            return _validator!.Evaluate(_model);
        }
        finally
        {
            _model.train();
        }
    }

    private void Save(long step, AdamW optimizer, List<double> recent, long skipped, long tokens, double? metric)
    {
        var state = new JsonObject
        {
            ["step"] = step,
            ["optimizer_steps"] = optimizer.StepCount,
            ["skipped"] = skipped,
            ["tokens"] = tokens,
            ["recent_losses"] = new JsonArray(recent.Select(x => (JsonNode?)x).ToArray()),
            ["data"] = _data.SavePosition(),
            ["objective"] = _objective.Name,
            ["seed"] = _o.Seed,
            ["total_steps"] = _o.Steps,
        };
        var config = _checkpointConfig?.Invoke(step, _model.Config) ?? _model.Config;
        var info = _store.Save(step, config, SaveableWeights(_model, optimizer), _tokenizer, state, optimizer.StateTensors(), metric);
        _store.Prune(_o.KeepLast, _o.KeepBest);
        _observer.Checkpointed(step, info.Path);
    }

    private bool IsSpike(double loss, List<double> recent) =>
        _o.SpikeFactor > 0 && recent.Count >= Math.Min(5, _o.SpikeWindow) && loss > _o.SpikeFactor * Median(recent);

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private void AppendMetrics(StepMetrics m, (string Name, double Value)? validation)
    {
        var line = new JsonObject
        {
            ["step"] = m.Step,
            ["loss"] = double.IsFinite(m.Loss) ? m.Loss : null,
            ["lr"] = m.LearningRate,
            ["block_size"] = m.BlockSize,
            ["grad_norm"] = double.IsFinite(m.GradNorm) ? m.GradNorm : null,
            ["tokens"] = m.Tokens,
            ["tokens_per_second"] = Math.Round(m.TokensPerSecond, 1),
            ["elapsed_seconds"] = Math.Round(m.Seconds, 3),
            ["skipped"] = m.Skipped,
            ["embedding_noise"] = m.EmbeddingNoise,
        };
        foreach (var (name, value) in m.Extra ?? new Dictionary<string, double>())
            line[name] = double.IsFinite(value) ? Math.Round(value, 6) : null;
        if (validation is { } v) line[v.Name] = double.IsFinite(v.Value) ? v.Value : null;
        File.AppendAllText(_metricsPath, line.ToJsonString() + "\n");
    }

    /// <summary>On resume, drop metric lines of steps that will be run again.</summary>
    private void TruncateMetrics(long fromStep)
    {
        if (!File.Exists(_metricsPath)) return;
        var kept = File.ReadLines(_metricsPath).Where(l => JsonNode.Parse(l)?["step"]?.GetValue<long>() < fromStep).ToList();
        AtomicFile.WriteAllText(_metricsPath, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
    }
}
