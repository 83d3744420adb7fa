using System.Text.Json.Nodes;
using Dllm.Chat;
using Dllm.Config;
using Dllm.Models;
using Dllm.Training;

namespace Dllm.FineTuning;

/// <summary>Everything `dllm sft` needs.</summary>
public sealed record SftOptions
{
    public required string Model { get; init; }
    public required string Data { get; init; }
    public required string Output { get; init; }
    public string? RunDirectory { get; init; }
    /// <summary>Chat template name; null: recognised from the tokenizer (raw prompt/answer data stays verbatim).</summary>
    public string? Template { get; init; }
    public SftSettings Settings { get; init; } = new();
    /// <summary>Label position when fine-tuning an AR checkpoint directly; a dLLM keeps the one it records (null: same position).</summary>
    public Config.LabelPosition? Labels { get; init; }
    public int MaxLength { get; init; } = 512;
    /// <summary>
    /// Write the element-wise mean of the last K checkpoints (spaced <see cref="TrainerOptions.CheckpointEvery"/> apart,
    /// the last at the final step) instead of the final one; 1 = the final checkpoint. At least K checkpoints are kept. Averaging the end of a run
    /// evens out where the last few noisy steps left the weights (METHOD.md §3 merges checkpoints the same way).
    /// </summary>
    public int AverageLast { get; init; } = 1;
    /// <summary>
    /// Batch examples of similar length together so batches pad less (<see cref="ExampleOrder"/>). Off by default: on
    /// the demo's tasks it trained on 0.73x the positions but learned slower (one seed: 92% at 2.9
    /// tokens per forward against 100% at 8.8 with random batches), which suggests the long EOS padding of random
    /// batches teaches the model to end an answer and fill the block behind it.
    /// </summary>
    public bool GroupByLength { get; init; }
    public TrainerOptions Trainer { get; init; } = new();
    public bool Resume { get; init; }

    public string ResolvedRunDirectory => RunDirectory ?? JobSupport.DefaultRunDirectory(Output);
}

/// <summary>
/// Supervised fine-tuning of a diffusion LM (METHOD.md §4): prompt-masked block-diffusion loss with the
/// mask-rate band, complementary masking and optionally CAP. An AR checkpoint gets a MASK token first.
/// </summary>
public static class SftJob
{
    public static JobResult Run(SftOptions o, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        observer ??= NullObserver.Instance;
        var run = o.ResolvedRunDirectory;
        JobSupport.Preflight(o.Output, run, o.Resume, [o.Data], o.Trainer);
        CheckAveraging(o);
        var (store, resumeFrom) = JobSupport.OpenRun(run, o.Resume, observer);
        using var loaded = LoadedModel.Load(resumeFrom?.Path ?? o.Model, new LoadOptions(o.Trainer.Device, o.Trainer.ComputeDType));
        var labels = JobSupport.Labels(loaded, o.Labels, o.Model);
        loaded.EnsureMaskToken();
        var encoder = new ExampleEncoder(loaded.Tokenizer, o.Template is null ? null : ChatTemplate.ByName(o.Template), Math.Min(o.MaxLength, loaded.Model.Config.MaxPositionEmbeddings));
        var examples = ConversationReader.ReadSft(o.Data).Select(encoder.Encode).ToList();
        observer.Message($"{examples.Count:N0} examples, {examples.Sum(e => e.Response.Length):N0} response tokens; block {o.Settings.BlockSize}, mask rates [{o.Settings.MinRate}, {o.Settings.MaxRate}]" +
                         (o.Settings.Complementary ? ", complementary masking" : "") + (o.Settings.CapWeight > 0 ? $", CAP weight {o.Settings.CapWeight}" : ""));
        var pad = loaded.Tokenizer.EosId ?? encoder.EndOfTurnId;
        var source = new SftBatchSource(examples, o.Trainer.BatchSize, o.Settings.BlockSize, pad, o.Trainer.Seed, o.GroupByLength);
        JobSupport.WritePlan(run, new JsonObject
        {
            ["job"] = o.Settings.CapWeight > 0 ? "sft+cap" : "sft",
            ["model"] = Path.GetFullPath(o.Model),
            ["data"] = Path.GetFullPath(o.Data),
            ["block_size"] = o.Settings.BlockSize,
            ["mask_rate_band"] = new JsonArray(o.Settings.MinRate, o.Settings.MaxRate),
            ["complementary"] = o.Settings.Complementary,
            ["cap_weight"] = o.Settings.CapWeight,
            ["template"] = o.Template,
            ["max_length"] = o.MaxLength,
            ["group_by_length"] = o.GroupByLength,
            ["labels"] = labels.Name(),
        }, o.Trainer, o.Resume);
        // Averaging needs its checkpoints: keep at least that many (0 keeps all anyway).
        var keep = o.Trainer.KeepLast == 0 ? 0 : Math.Max(o.Trainer.KeepLast, o.AverageLast);
        // Checkpoints record the block they train at, which may differ from the one the model came with.
        var trainer = new Trainer(loaded.Model, loaded.Tokenizer, new SftObjective(o.Settings, loaded.MaskTokenId!.Value, labels), source, null,
            o.Trainer with { KeepLast = keep }, run, observer, (_, c) => c with { Diffusion = new Config.DiffusionSettings(o.Settings.BlockSize, labels) });
        var outcome = trainer.Run(resumeFrom, cancel);
        if (outcome == TrainingOutcome.Completed)
            JobSupport.WriteFinal(Final(o, store, run, observer), o.Output);
        return new JobResult(o.Output, run, outcome, null, "", null);
    }

    private static void CheckAveraging(SftOptions o)
    {
        var k = o.AverageLast;
        if (k < 1) throw new DllmException($"--average-last must be at least 1, got {k}");
        if (k == 1) return;
        if ((k - 1) * o.Trainer.CheckpointEvery >= o.Trainer.Steps)
            throw new DllmException($"--average-last {k} with --checkpoint-every {o.Trainer.CheckpointEvery} reaches back before step 0 of a " +
                                    $"{o.Trainer.Steps}-step run; checkpoint more often or average fewer");
    }

    /// <summary>The checkpoint the output is written from: the last one, or the mean of the last K.</summary>
    private static string Final(SftOptions o, CheckpointStore store, string run, ITrainingObserver observer)
    {
        if (o.AverageLast == 1) return store.Latest()!.Path;
        var last = store.List().OrderBy(c => c.Step).TakeLast(o.AverageLast).ToList();
        var averaged = Path.Combine(run, "averaged");
        if (Directory.Exists(averaged)) Directory.Delete(averaged, recursive: true);
        CheckpointMerge.Merge(last.Select(c => c.Path).ToList(), averaged);
        observer.Message($"averaged the checkpoints of steps {string.Join(", ", last.Select(c => c.Step))}");
        return averaged;
    }
}
