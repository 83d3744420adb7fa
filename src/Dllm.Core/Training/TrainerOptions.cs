namespace Dllm.Training;

/// <summary>Settings of one training run (CLI flags and the demo fill these; defaults suit small runs).</summary>
public sealed record TrainerOptions
{
    public long Steps { get; init; } = 200;
    public int BatchSize { get; init; } = 8;
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Micro-batches run at once on CPU threads, each on its own copy of the model (<see cref="Replicas"/>); divides <see cref="GradientAccumulation"/>.</summary>
    public int Replicas { get; init; } = 1;
    public LearningRateSchedule? LearningRate { get; init; }
    public double PeakLearningRate { get; init; } = 3e-4;
    public AdamWOptions AdamW { get; init; } = new();
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>Compute dtype; masters and optimizer state stay fp32.</summary>
    public string ComputeDType { get; init; } = "float32";
    public string Device { get; init; } = "cpu";
    public long Seed { get; init; }
    /// <summary>Masked-embedding noise std (relative to the embedding RMS) at step 0, annealed to 0 over <see cref="EmbeddingNoiseSteps"/>.</summary>
    public double EmbeddingNoise { get; init; }
    public long EmbeddingNoiseSteps { get; init; }
    /// <summary>Skip a step whose loss exceeds this multiple of the median of recent losses (0 = never).</summary>
    public double SpikeFactor { get; init; } = 3.0;
    public int SpikeWindow { get; init; } = 20;
    public long EvalEvery { get; init; } = 50;
    public long CheckpointEvery { get; init; } = 100;
    /// <summary>How many periodic checkpoints to keep besides the best ones (0 keeps all).</summary>
    public int KeepLast { get; init; } = 3;
    public int KeepBest { get; init; } = 5;
    /// <summary>Stop (with a checkpoint) after this many steps of this invocation: an interruption on purpose, for tests.</summary>
    public long? StopAfter { get; init; }

    public LearningRateSchedule ResolveLearningRate() => LearningRate ?? LearningRateSchedule.Wsd(PeakLearningRate, Steps);

    /// <summary>Refuses settings that would fail, hang or train on NaN, naming the flag each comes from.</summary>
    public void Validate()
    {
        if (Steps <= 0) throw new DllmException($"--steps must be positive, got {Steps}");
        if (BatchSize <= 0) throw new DllmException($"--batch-size must be positive, got {BatchSize}");
        if (GradientAccumulation <= 0) throw new DllmException($"--grad-accum must be positive, got {GradientAccumulation}");
        if (Replicas is < 1 or > 256) throw new DllmException($"--replicas must be between 1 and 256, got {Replicas}");
        if (GradientAccumulation % Replicas != 0)
            throw new DllmException($"--grad-accum {GradientAccumulation} is not a multiple of --replicas {Replicas}: each round runs one micro-batch per replica");
        if (Replicas > 1 && !Device.StartsWith("cpu", StringComparison.Ordinal))
            throw new DllmException($"--replicas runs micro-batches on CPU threads, not on {Device}: use one replica there (--grad-accum still works)");
        if (!(PeakLearningRate > 0 && double.IsFinite(PeakLearningRate))) throw new DllmException($"--lr must be a positive number, got {PeakLearningRate}");
        if (!(ClipNorm >= 0 && double.IsFinite(ClipNorm))) throw new DllmException($"--clip must be 0 (off) or a positive number, got {ClipNorm}");
        if (!(AdamW.WeightDecay >= 0 && double.IsFinite(AdamW.WeightDecay))) throw new DllmException($"--weight-decay must be 0 or a positive number, got {AdamW.WeightDecay}");
        if (!(SpikeFactor >= 0 && double.IsFinite(SpikeFactor))) throw new DllmException($"--spike-factor must be 0 (off) or a positive number, got {SpikeFactor}");
        if (!(EmbeddingNoise >= 0 && double.IsFinite(EmbeddingNoise))) throw new DllmException($"--embedding-noise must be 0 (off) or a positive number, got {EmbeddingNoise}");
        if (EmbeddingNoiseSteps < 0) throw new DllmException($"--embedding-noise-fraction must not be negative (got {EmbeddingNoiseSteps} steps)");
        if (EvalEvery <= 0) throw new DllmException($"--eval-every must be positive, got {EvalEvery}");
        if (CheckpointEvery <= 0) throw new DllmException($"--checkpoint-every must be positive, got {CheckpointEvery}");
        if (KeepLast < 0) throw new DllmException($"--keep-last must be 0 (keep all) or positive, got {KeepLast}");
        if (KeepBest < 0) throw new DllmException($"keep-best must not be negative, got {KeepBest}");
        if (SpikeWindow <= 0) throw new DllmException($"spike window must be positive, got {SpikeWindow}");
        if (StopAfter is <= 0) throw new DllmException($"stop-after must be positive, got {StopAfter}");
    }
}
