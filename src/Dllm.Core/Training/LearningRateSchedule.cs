namespace Dllm.Training;

/// <summary>
/// Warmup-stable-decay learning rate: linear warm-up from 0 over <see cref="WarmupSteps"/>, constant
/// at the peak, then linear decay to <see cref="MinLearningRate"/> over the last <see cref="DecaySteps"/>.
/// </summary>
public sealed record LearningRateSchedule(double PeakLearningRate, double MinLearningRate, long WarmupSteps, long DecaySteps, long TotalSteps)
{
    public static LearningRateSchedule Wsd(double peak, long totalSteps, double warmupFraction = 0.05, double decayFraction = 0.2, double minRatio = 0.1) =>
        new(peak, peak * minRatio, (long)Math.Round(totalSteps * warmupFraction), (long)Math.Round(totalSteps * decayFraction), totalSteps);

    public double At(long step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return PeakLearningRate * (step + 1) / WarmupSteps;
        var decayStart = TotalSteps - DecaySteps;
        if (DecaySteps > 0 && step >= decayStart)
        {
            var progress = Math.Min(1.0, (double)(step - decayStart + 1) / DecaySteps);
            return PeakLearningRate + (MinLearningRate - PeakLearningRate) * progress;
        }
        return PeakLearningRate;
    }
}
