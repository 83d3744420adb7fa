using System.Text.Json.Nodes;
using Dllm.Models;
using Dllm.Runtime;
using Dllm.Training;

namespace Dllm.Tests.Training;

/// <summary>
/// What a kill -9 can leave in a run's checkpoints folder, and how the store treats it: a half-deleted or
/// half-written checkpoint is never listed, resumed from or merged, and leftovers are swept when a run opens.
/// </summary>
public class CheckpointLeftoverTests
{
    public CheckpointLeftoverTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A store with checkpoints at the given steps (metric = 10 - step / 10, so later is better).</summary>
    private static CheckpointStore Store(TempDirectory dir, params long[] steps)
    {
        using var model = TinyConfigs.Model("llama");
        var store = new CheckpointStore(dir.Path);
        foreach (var step in steps)
            store.Save(step, model.Config, model.state_dict(), TinyCheckpoints.Tokenizer(), new JsonObject { ["step"] = step }, [], 10 - step / 10.0);
        return store;
    }

    private static string[] Folders(CheckpointStore store) =>
        Directory.EnumerateDirectories(store.Root).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Fact]
    public void PruningLeavesOnlyListedCompleteCheckpoints()
    {
        using var dir = new TempDirectory();
        var store = Store(dir, 10, 20, 30, 40);
        store.Prune(keepLast: 2, keepBest: 0);
        Assert.Equal([30L, 40L], store.List().Select(c => c.Step));
        Assert.Equal(["step-0000030", "step-0000040"], Folders(store));
    }

    [Fact]
    public void AListedCheckpointThatAKillHalfDeletedIsNeitherResumedNorMerged()
    {
        using var dir = new TempDirectory();
        var store = Store(dir, 10, 20, 30);
        // The old prune deleted folders before rewriting the index: a kill in between left this state.
        File.Delete(Path.Combine(store.Root, "step-0000030", "model.safetensors"));
        Directory.Delete(Path.Combine(store.Root, "step-0000030", "trainer"), recursive: true);

        Assert.Equal([10L, 20L], store.List().Select(c => c.Step));
        Assert.Equal(20, store.Latest()!.Step);
        // The best metric belongs to step 30, but merge ranks only whole checkpoints.
        Assert.Equal([20L, 10L], CheckpointMerge.Select(store, 2).Select(c => c.Step));
        var e = Assert.Throws<DllmException>(() => CheckpointMerge.Select(store, 3));
        Assert.Contains("holds 2", e.Message);
        // Merging a broken folder by path fails by name instead of averaging what is left of it.
        var broken = Assert.Throws<DllmException>(() => CheckpointMerge.Merge([Path.Combine(store.Root, "step-0000020"), Path.Combine(store.Root, "step-0000030")], dir.File("merged")));
        Assert.Contains("step-0000030", broken.Message);
        Assert.False(Directory.Exists(dir.File("merged")));
    }

    [Fact]
    public void LeftoversOfKilledSavesAndPrunesAreSweptAndLiveOnesKept()
    {
        using var dir = new TempDirectory();
        var store = Store(dir, 10, 20);
        string Make(string name)
        {
            var path = Path.Combine(store.Root, name);
            Directory.CreateDirectory(Path.Combine(path, "trainer"));
            File.WriteAllText(Path.Combine(path, "config.json"), "{}");
            return name;
        }
        var deadPid = 2_000_000_000;   // beyond any pid this machine hands out
        var staleSave = Make($".step-0000030.saving-{deadPid}-0123456789abcdef0123456789abcdef");
        var liveSave = Make($".step-0000030.saving-{Environment.ProcessId}-0123456789abcdef0123456789abcdef");
        var unlisted = Make("step-0000005");   // the new prune rewrites the index first: a kill then leaves this
        var deleting = Make(".deleting-step-0000001-0123456789abcdef0123456789abcdef");
        var parked = Make("step-0000020.old-0123456789abcdef0123456789abcdef");

        var swept = store.SweepLeftovers();
        Assert.Equal(new[] { staleSave, unlisted, deleting, parked }.Order(StringComparer.Ordinal), swept.Order(StringComparer.Ordinal));
        Assert.Equal(new[] { liveSave, "step-0000010", "step-0000020" }.Order(StringComparer.Ordinal), Folders(store));
        Assert.Equal([10L, 20L], store.List().Select(c => c.Step));
    }

    [Fact]
    public void AnIndexNamingAFolderOutsideTheRunIsRefusedNotFollowed()
    {
        using var dir = new TempDirectory();
        var store = Store(dir, 10);
        Directory.CreateDirectory(dir.File("precious"));
        File.WriteAllText(Path.Combine(store.Root, "index.json"), """{"checkpoints": [{"step": 1, "dir": "../../precious", "metric": 1.0}]}""");
        var e = Assert.Throws<DllmException>(() => store.Prune(keepLast: 1, keepBest: 0));
        Assert.Contains("not a step folder", e.Message);
        Assert.True(Directory.Exists(dir.File("precious")));
    }

    [Fact]
    public void AnInterruptionBeforeTheFirstStepWritesNoCheckpoint()
    {
        using var dir = new TempDirectory();
        using var model = TinyConfigs.Model("llama");
        var data = new InMemoryBatchSource(InMemoryBatchSource.Patterns(16, 16, 200, 1), 2);
        var trainer = new Trainer(model, TinyCheckpoints.Tokenizer(), new ArObjective(), data, null, new TrainerOptions { Steps = 10, BatchSize = 2 }, dir.Path);
        Assert.Equal(TrainingOutcome.Cancelled, trainer.Run(cancel: new CancellationToken(canceled: true)));
        Assert.Empty(trainer.Checkpoints.List());
    }
}
