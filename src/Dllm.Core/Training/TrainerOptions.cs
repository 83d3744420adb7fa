namespace Dllm.Training;

/// <summary>Settings of one training run (CLI flags and the demo fill these; defaults suit small runs).</summary>
public sealed record TrainerOptions
{
    public long Steps { get; init; } = 200;
    public int BatchSize { get; init; } = 8;
    public int GradientAccumulation { get; init; } = 1;
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

    public void Validate()
    {
        if (Steps <= 0) throw new DllmException($"steps must be positive, got {Steps}");
        if (BatchSize <= 0) throw new DllmException($"batch size must be positive, got {BatchSize}");
        if (GradientAccumulation <= 0) throw new DllmException($"gradient accumulation must be positive, got {GradientAccumulation}");
        if (PeakLearningRate <= 0) throw new DllmException($"learning rate must be positive, got {PeakLearningRate}");
    }
}
