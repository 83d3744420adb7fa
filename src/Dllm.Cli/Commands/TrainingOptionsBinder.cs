using System.CommandLine;
using Dllm.Training;

namespace Dllm.Cli.Commands;

/// <summary>
/// The trainer's flags, shared by pretrain, convert and the fine-tuning verbs; each verb picks its
/// defaults. The default learning rate scales with the model's width (<see cref="AutoLearningRate"/>).
/// </summary>
internal sealed class TrainingOptionsBinder(long steps, int batchSize, double lrScale = 1.0)
{
    public Option<long> Steps { get; } = new("--steps") { Description = "Optimizer steps (ignored when --schedule gives the phases)", DefaultValueFactory = _ => steps };
    public Option<int> BatchSize { get; } = new("--batch-size") { Description = "Sequences per micro-batch", DefaultValueFactory = _ => batchSize };
    public Option<int> Accumulate { get; } = new("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
    public Option<int> Replicas { get; } = new("--replicas")
    {
        Description = "CPU only: run this many micro-batches at once, each on its own copy of the model sharing its weights, on its " +
                      "share of the threads (--grad-accum must be a multiple). Small models train faster this way than with more " +
                      "threads per operation; the result equals --replicas 1 up to float rounding",
        DefaultValueFactory = _ => 1,
    };
    public Option<double?> LearningRate { get; } = new("--lr") { Description = $"Peak learning rate (warm-up 5%, constant, linear decay over the last 20% to 10%); default {lrScale:G2} x 0.128 / hidden_size, clamped to [2e-5, 3e-3] ({Example(lrScale, 64)} for a 64-wide model, {Example(lrScale, 2048)} for a 2048-wide one)" };
    public Option<double> WeightDecay { get; } = new("--weight-decay") { Description = "AdamW weight decay on matrices", DefaultValueFactory = _ => 0.1 };
    public Option<double> Clip { get; } = new("--clip") { Description = "Gradient-norm clipping (0 = off)", DefaultValueFactory = _ => 1.0 };
    public Option<long> Seed { get; } = new("--seed") { Description = "Seed for data order, masks and noise (same seed, same run)", DefaultValueFactory = _ => 0 };
    public Option<string> Device { get; } = SharedOptions.Device();
    public Option<string> ComputeDType { get; } = new("--dtype") { Description = "Compute dtype: float32, or bfloat16 (fp32 master weights and optimizer state either way)", DefaultValueFactory = _ => "float32" };
    public Option<long> EvalEvery { get; } = new("--eval-every") { Description = "Validation every N steps (and at every checkpoint)", DefaultValueFactory = _ => 50 };
    public Option<long> CheckpointEvery { get; } = new("--checkpoint-every") { Description = "Atomic checkpoint every N steps", DefaultValueFactory = _ => 100 };
    public Option<int> KeepLast { get; } = new("--keep-last") { Description = "Periodic checkpoints to keep besides the best ones (0 = all)", DefaultValueFactory = _ => 3 };
    public Option<double> SpikeFactor { get; } = new("--spike-factor") { Description = "Skip a step whose loss exceeds this multiple of the recent median (0 = off)", DefaultValueFactory = _ => 3.0 };
    public Option<bool> Resume { get; } = new("--resume") { Description = "Continue the run in the run folder from its latest checkpoint (exactly)" };
    public Option<string?> RunDir { get; } = new("--run-dir") { Description = "Folder for checkpoints, metrics.jsonl and the token cache (default: <out>-run)" };

    public IEnumerable<Option> All => [Steps, BatchSize, Accumulate, Replicas, LearningRate, WeightDecay, Clip, Seed, Device, ComputeDType, EvalEvery, CheckpointEvery, KeepLast, SpikeFactor, Resume, RunDir];

    /// <summary>The default peak learning rate for a model of this hidden size: wider models take smaller steps.</summary>
    public double AutoLearningRate(int hiddenSize) => Rule(lrScale, hiddenSize);

    private static double Rule(double scale, int hiddenSize) => Math.Clamp(scale * 0.128 / hiddenSize, 2e-5, 3e-3);

    private static string Example(double scale, int hiddenSize) => Rule(scale, hiddenSize).ToString("G2", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The options for training the checkpoint in <paramref name="modelDirectory"/> (its width sets the default learning rate).</summary>
    public TrainerOptions BindFor(ParseResult p, string modelDirectory) => Bind(p, Dllm.Config.ModelConfigReader.ReadDirectory(modelDirectory).HiddenSize);

    public TrainerOptions Bind(ParseResult p, int hiddenSize) => new()
    {
        Steps = p.GetValue(Steps),
        BatchSize = p.GetValue(BatchSize),
        GradientAccumulation = p.GetValue(Accumulate),
        Replicas = p.GetValue(Replicas),
        PeakLearningRate = p.GetValue(LearningRate) ?? AutoLearningRate(hiddenSize),
        AdamW = new AdamWOptions(WeightDecay: p.GetValue(WeightDecay)),
        ClipNorm = p.GetValue(Clip),
        Seed = p.GetValue(Seed),
        Device = p.GetValue(Device)!,
        ComputeDType = p.GetValue(ComputeDType)!,
        EvalEvery = p.GetValue(EvalEvery),
        CheckpointEvery = p.GetValue(CheckpointEvery),
        KeepLast = p.GetValue(KeepLast),
        SpikeFactor = p.GetValue(SpikeFactor),
    };
}
