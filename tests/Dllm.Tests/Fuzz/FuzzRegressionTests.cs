using Dllm.Fuzz;

namespace Dllm.Tests.Fuzz;

/// <summary>
/// Replays what fuzzing found (fuzz/regressions/TARGET/*, kept by fuzz/run.sh, each fixed since) and the hand-made
/// inputs of the crashes this issue fixed, through the same harness functions the fuzzer drives. An input passes when
/// it parses or fails with a one-line DllmException, within seconds.
/// </summary>
public class FuzzRegressionTests
{
    private static string Regressions => Path.Combine(TestData.RepoRoot, "fuzz", "regressions");

    public static TheoryData<string> Targets => new(Harnesses.All.Keys);

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task KeptInputsAreAnsweredWithAUserErrorOrParsed(string target)
    {
        var dir = Path.Combine(Regressions, target);
        var inputs = Directory.Exists(dir) ? Directory.GetFiles(dir).Order(StringComparer.Ordinal).ToList() : [];
        try
        {
            foreach (var input in inputs)
            {
                var run = Task.Run(() => Harnesses.Run(target, File.ReadAllBytes(input)));
                Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60))) == run, $"{input} did not finish within 60 s");
                await run;   // rethrows anything but the user error the harness swallows
            }
        }
        finally
        {
            Scratch.Clean();
        }
    }

    [Fact]
    public void EveryTargetHasRegressionInputs()
    {
        foreach (var target in Harnesses.All.Keys)
            Assert.True(Directory.Exists(Path.Combine(Regressions, target)) && Directory.EnumerateFiles(Path.Combine(Regressions, target)).Any(), $"fuzz/regressions/{target} is empty");
    }
}
