namespace Dllm.Training;

/// <summary>One optimizer step's numbers (also one line of metrics.jsonl).</summary>
public sealed record StepMetrics(long Step, double Loss, double LearningRate, int BlockSize, double GradNorm, long Tokens,
    double TokensPerSecond, double Seconds, bool Skipped, double EmbeddingNoise, IReadOnlyDictionary<string, double>? Extra = null);

/// <summary>How a run ended.</summary>
public enum TrainingOutcome { Completed, Stopped, Cancelled }

/// <summary>Receives progress; the CLI renders it (Spectre progress or plain lines), tests record it.</summary>
public interface ITrainingObserver
{
    void Started(long startStep, long totalSteps, string plan) { }
    void Step(StepMetrics metrics) { }
    void Evaluated(long step, string metric, double value) { }
    void Checkpointed(long step, string path) { }
    void Message(string text) { }
}

public sealed class NullObserver : ITrainingObserver
{
    public static readonly NullObserver Instance = new();
}
