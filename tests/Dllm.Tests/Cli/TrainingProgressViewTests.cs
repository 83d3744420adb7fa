using Dllm.Cli.Commands;
using Dllm.Training;

namespace Dllm.Tests.Cli;

public class TrainingProgressViewTests
{
    private static StepMetrics At(long step, double seconds) => new(step, 1.0, 1e-3, 4, 1.0, 100, 100, seconds, false, 0);

    [Fact]
    public void AResumedRunEstimatesTheRestFromTheStepsItHasDoneItself()
    {
        var output = new StringWriter();
        var view = new TrainingProgressView(output, interactive: false);
        view.Started(startStep: 1000, totalSteps: 2000, plan: "test");
        view.Step(At(1000, 2.0));   // its first step took 2 s: 999 steps left take about 1998 s
        Assert.Contains("eta 00:33:18", output.ToString());
    }

    [Fact]
    public void AFreshRunEstimatesFromEveryStep()
    {
        var output = new StringWriter();
        var view = new TrainingProgressView(output, interactive: false);
        view.Started(startStep: 0, totalSteps: 100, plan: "test");
        view.Step(At(0, 0.5));      // 99 steps left at 0.5 s
        Assert.Contains("eta 00:00:49", output.ToString());
    }
}
