using Dllm.Training;

namespace Dllm.Tests.Training;

public class ScheduleTests
{
    [Fact]
    public void DefaultWsdWarmsUpInPowersOfFourThenHoldsLThenDecays()
    {
        var s = BlockSchedule.Wsd(100, 256, finalBlockSize: 32);
        Assert.Equal(new[] { 1, 4, 16, 64, 256, 32 }, s.Phases.Select(p => p.BlockSize));
        Assert.Equal(100, s.TotalSteps);
        Assert.Equal(25, s.Phases.Where(p => p.Stage == "warmup").Sum(p => p.Steps));
        Assert.Equal(20, s.Phases[^1].Steps);
        Assert.Equal(1, s.BlockSizeAt(0));
        Assert.Equal(256, s.BlockSizeAt(50));
        Assert.Equal(32, s.BlockSizeAt(99));
        Assert.Equal(32, s.BlockSizeAt(1000));
    }

    [Fact]
    public void ScheduleFilesInJsonAndYamlGiveTheSamePhases()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("s.json"), """{"phases": [{"steps": 10, "block_size": 1, "stage": "warmup"}, {"steps": 20, "block_size": 64}]}""");
        File.WriteAllText(dir.File("s.yaml"), "phases:\n  - steps: 10\n    block_size: 1\n    stage: warmup\n  - steps: 20\n    block_size: 64\n");
        var json = BlockSchedule.Load(dir.File("s.json"));
        var yaml = BlockSchedule.Load(dir.File("s.yaml"));
        Assert.Equal(json.Phases, yaml.Phases);
        Assert.Equal(64, yaml.BlockSizeAt(10));
        Assert.Contains("outside 1..32", Assert.Throws<DllmException>(() => yaml.Validate(32)).Message);
        File.WriteAllText(dir.File("bad.yaml"), "phases:\n  - steps: ten\n    block_size: 1\n");
        Assert.Contains("integers", Assert.Throws<DllmException>(() => BlockSchedule.Load(dir.File("bad.yaml"))).Message);
    }

    [Fact]
    public void LearningRateWarmsUpHoldsAndDecaysToTheFloor()
    {
        var lr = LearningRateSchedule.Wsd(1e-3, 100, warmupFraction: 0.1, decayFraction: 0.2, minRatio: 0.1);
        Assert.Equal(1e-4, lr.At(0), 10);
        Assert.Equal(1e-3, lr.At(9), 10);
        Assert.Equal(1e-3, lr.At(79), 10);
        Assert.Equal(1e-4, lr.At(99), 10);
        Assert.True(lr.At(90) < lr.At(85));
    }
}
