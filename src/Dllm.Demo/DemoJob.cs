using System.Diagnostics;
using Dllm.Config;
using Dllm.Evaluation;
using Dllm.FineTuning;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Tokenization;
using Dllm.Training;

namespace Dllm.Demo;

/// <summary>
/// Sizes of the embedded demo. <see cref="Full"/> takes about 10 minutes on 2 cores (553 s on an AVX2 host with SFT+CAP alone, where the previous build with plain SFT beside it took 729 s the same day; fewer fine-tuning steps lose accuracy: 500 gave 88%; 1200 AR steps at init scale 0.1:
/// with the default seed the copy transition comes by step 1000; other seeds may need more) and <see cref="QuickRun"/>
/// under two, on shorter lists with a smaller model;
/// every figure is chosen from measurements (docs/benchmarks.md), and every one can be overridden for studies.
/// </summary>
public sealed record DemoOptions
{
    public required string Output { get; init; }
    public bool Quick { get; init; }
    public long Seed { get; init; } = 1234;
    public required DemoCorpusOptions Corpus { get; init; }
    public int VocabSize { get; init; } = 1000;
    public int SequenceLength { get; init; } = 128;
    public int Hidden { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    /// <summary>Sequences per step of conversion and fine-tuning.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Sequences per AR pre-training step: the quick demo takes more, smaller steps (the copy transition counts steps).</summary>
    public int PretrainBatchSize { get; init; } = 16;
    public long PretrainSteps { get; init; }
    public double PretrainLearningRate { get; init; } = 3e-3;
    /// <summary>
    /// The AR model's initializer_range. 0.1 rather than HF's 0.02: at 0.02 the copy transition came after 1200 steps
    /// in every seed tried (and after 3000 in some), at 0.1 by 600-1000 steps in most (docs/benchmarks.md, "Demo models").
    /// </summary>
    public double PretrainInitStd { get; init; } = 0.1;
    public long ConvertSteps { get; init; }
    public double ConvertLearningRate { get; init; } = 2e-3;
    public long SftSteps { get; init; }
    public double SftLearningRate { get; init; } = 1e-3;
    public double CapWeight { get; init; } = 2.0;
    /// <summary>
    /// SFT and SFT+CAP write the mean of their last checkpoints, this many taken <see cref="SftCheckpointEvery"/> steps apart
    /// (1 = the final one). Over four seeds of the CAP stage the final checkpoint scored 89-100% (mean 96.0), the mean of
    /// the last five 95-99% (mean 97.0; docs/benchmarks.md).
    /// </summary>
    public int SftAverageLast { get; init; } = 5;
    public long SftCheckpointEvery { get; init; } = 25;
    public long DpoSteps { get; init; }
    /// <summary>The block the model is converted to, fine-tuned and decoded at.</summary>
    public int BlockSize { get; init; } = DiffusionSettings.DefaultBlockSize;
    public LabelPosition Labels { get; init; } = LabelPosition.Shift;
    /// <summary>
    /// The decoding threshold every diffusion stage is reported at: LLaDA2.0's 0.95. At 0.9 the demo's SFT+CAP decoded
    /// about 5% more tokens per forward but lost 1-5 points on reverse (docs/benchmarks.md, "The demo on an AVX-512 host").
    /// </summary>
    public double Threshold { get; init; } = new BlockDecodeOptions().Threshold;
    /// <summary>
    /// Intra-op threads while the stages decode the held-out tasks. The demo's models are too small for a second thread
    /// to pay: one forward of 32 positions on a 0.9 M model took 3.8 ms on two threads and 2.5 ms on one, an AR step
    /// 1.05 ms either way (docs/benchmarks.md).
    /// </summary>
    public int ScoringThreads { get; init; } = 1;
    /// <summary>
    /// Also fine-tune without CAP, from the same start and at the same budget, for the table's SFT row: what CAP adds
    /// (bench/scripts/cap-evidence.sh measures it over seeds). Off, SFT+CAP trains alone on every thread: on an AVX2
    /// host the full demo took 553 s so, and 729 s the same day with plain SFT beside it (SFT+CAP 176 s alone, 315 s
    /// side by side), over its 10 minutes.
    /// </summary>
    public bool PlainSft { get; init; }
    /// <summary>With <see cref="PlainSft"/>, plain SFT and SFT+CAP train at the same time, one core each (when the machine has two or more).</summary>
    public bool ParallelFineTuning { get; init; } = true;
    /// <summary>Interleaved AR / SFT+CAP passes over the held-out tasks for the tokens/s comparison (medians).</summary>
    public int SpeedPasses { get; init; } = 3;

    /// <summary>A held-out-style prompt the demo's models can answer, for the "next:" hint (as long as the lists allow, up to 8 words).</summary>
    public string ExamplePrompt =>
        $"Reverse: {string.Join(' ', new[] { "red", "cat", "sun", "tree", "moon", "book", "hat", "fish" }.Take(Math.Min(8, Corpus.MaxItems)))} ->";

    public static DemoOptions Full(string output, long seed = 1234) => new()
    {
        Output = output,
        Seed = seed,
        Corpus = new DemoCorpusOptions(Stories: 600, TasksPerKind: 8000, TestTasksPerKind: 50, Seed: seed),
        PretrainSteps = 1200,
        ConvertSteps = 400,
        SftSteps = 800,
        DpoSteps = 60,
    };

    /// <summary>
    /// Under two minutes on 2 cores, and still the method paying: lists of 3-6 words (no scaffolds), a 2-layer model of
    /// hidden 64 that learns to copy within 3000 steps of 8 windows at learning rate 6e-3 (0.13 M parameters; hidden 128
    /// reached 37% in the same time), 64-token windows, and block 16 for answers of 4-7 tokens (block 32 gave 3.3 tokens
    /// per forward at 62%, block 16 4.1 at 85%); SFT gets the most steps, as they are cheap here (docs/benchmarks.md,
    /// "The quick demo in under two minutes").
    /// </summary>
    public static DemoOptions QuickRun(string output, long seed = 1234) => new()
    {
        Output = output,
        Quick = true,
        Seed = seed,
        Corpus = new DemoCorpusOptions(Stories: 100, TasksPerKind: 2000, TestTasksPerKind: 50, Seed: seed, MinItems: 3, MaxItems: 6, Scaffolds: false),
        VocabSize = 512,
        SequenceLength = 64,
        Hidden = 64,
        Layers = 2,
        PretrainSteps = 3000,
        PretrainBatchSize = 8,
        PretrainLearningRate = 6e-3,
        ConvertSteps = 400,
        SftSteps = 1200,
        SftAverageLast = 1,
        DpoSteps = 20,
        BlockSize = 16,
    };
}

/// <summary>What the demo measured, for its report.</summary>
public sealed record DemoReport(
    DemoOptions Options, DemoCorpusSummary Corpus, long Parameters, double ArPerplexity, double DlmNelboBound,
    IReadOnlyList<(string Stage, TaskReport Tasks)> Stages, TaskComparison Speed, string ArSample, string DlmSample,
    IReadOnlyList<(string Stage, double Seconds)> Timings);

/// <summary>
/// The embedded default, end to end and offline: synthetic corpus -> BPE tokenizer -> AR pre-training ->
/// conversion with the WSD block schedule -> SFT+CAP on the training tasks (with <see cref="DemoOptions.PlainSft"/>,
/// plain SFT beside it from the same start at the same budget) -> DPO from SFT+CAP on correct-vs-wrong answer pairs -> held-out perplexity, NELBO bound, and task
/// accuracy with tokens per forward for every stage, one prompt at a time (batch 1), and the AR parent against
/// SFT+CAP in interleaved passes for tokens/s. Leaves DIR/data, DIR/tokenizer, DIR/{ar,dlm,cap,dpo} (and DIR/sft).
/// </summary>
public static class DemoJob
{
    private const int Stages = 7;

    public static DemoReport Run(DemoOptions o, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        observer ??= NullObserver.Instance;
        var timings = new List<(string, double)>();
        var clock = Stopwatch.StartNew();
        void Lap(string stage) { timings.Add((stage, clock.Elapsed.TotalSeconds)); clock.Restart(); }
        void Stage(int n, string what) => observer.Message($"{n}/{Stages} {what}");

        var data = Path.Combine(o.Output, "data");
        Stage(1, $"writing the synthetic corpus and training a BPE tokenizer ({data})");
        var corpus = SyntheticCorpus.Write(data, o.Corpus);
        var train = Path.Combine(data, SyntheticCorpus.TrainFile);
        var valid = Path.Combine(data, SyntheticCorpus.ValidFile);
        var tokenizerDir = Path.Combine(o.Output, "tokenizer");
        BpeTrainer.Train(SyntheticCorpus.ParseDocuments(File.ReadAllText(train)), o.VocabSize, tokenizerDir);
        Lap("corpus + tokenizer");

        string ar = Path.Combine(o.Output, "ar"), dlm = Path.Combine(o.Output, "dlm"), sft = Path.Combine(o.Output, "sft"),
            cap = Path.Combine(o.Output, "cap"), dpo = Path.Combine(o.Output, "dpo");
        foreach (var model in new[] { ar, dlm, sft, cap, dpo })
            foreach (var folder in new[] { model, model + "-run" })
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);   // the demo always starts fresh (jobs refuse a used --out)

        Stage(2, $"pre-training a small AR model ({o.Layers} layers, hidden {o.Hidden}) on {corpus.TrainDocuments:N0} documents");
        var trainer = new TrainerOptions
        {
            BatchSize = o.BatchSize,
            Seed = o.Seed,
            EvalEvery = 100_000,
            CheckpointEvery = 100_000,
            KeepLast = 1,
            AdamW = new AdamWOptions(WeightDecay: 0.05),
        };
        var arConfig = ModelPresets.Llama(o.Hidden, o.Layers, o.Heads, o.KvHeads, ffn: 0, context: 512);
        arConfig["initializer_range"] = o.PretrainInitStd;
        Finish(PretrainJob.Run(new PretrainOptions
        {
            Tokenizer = tokenizerDir,
            Config = arConfig,
            Data = [train],
            Output = ar,
            SequenceLength = o.SequenceLength,
            Trainer = trainer with { Steps = o.PretrainSteps, BatchSize = o.PretrainBatchSize, PeakLearningRate = o.PretrainLearningRate },
        }, observer, cancel));
        Lap("AR pre-training");

        Stage(3, $"converting it into a block-diffusion LM (WSD block schedule to block {o.BlockSize}, {o.Labels.Name()} labels)");
        Finish(ConversionJob.Run(new ConversionOptions
        {
            Model = ar,
            Data = [train],
            Output = dlm,
            SequenceLength = o.SequenceLength,
            BlockSize = o.BlockSize,
            Labels = o.Labels,
            Trainer = trainer with { Steps = o.ConvertSteps, PeakLearningRate = o.ConvertLearningRate, EmbeddingNoise = 0.1 },
        }, observer, cancel));
        Lap("conversion");

        Stage(4, o.PlainSft ? "supervised fine-tuning on the training tasks: plain SFT and SFT+CAP from the same start" : "supervised fine-tuning with CAP on the training tasks");
        var trainTasks = Path.Combine(data, SyntheticCorpus.TrainTasksFile);
        var fineTune = trainer with { Steps = o.SftSteps, PeakLearningRate = o.SftLearningRate };
        var averaged = o.SftAverageLast > 1
            ? fineTune with { CheckpointEvery = o.SftCheckpointEvery }   // SftJob keeps the checkpoints it averages
            : fineTune;
        var sftSettings = new SftSettings(o.BlockSize);
        JobResult WithCap(ITrainingObserver view) =>
            SftJob.Run(new SftOptions { Model = dlm, Data = trainTasks, Output = cap, Settings = sftSettings with { CapWeight = o.CapWeight }, Trainer = averaged, AverageLast = o.SftAverageLast }, view, cancel);
        if (o.PlainSft)
            SideBySide(o.ParallelFineTuning, observer,
                view => SftJob.Run(new SftOptions { Model = dlm, Data = trainTasks, Output = sft, Settings = sftSettings, Trainer = averaged, AverageLast = o.SftAverageLast }, view, cancel),
                WithCap);
        else Finish(WithCap(observer));
        Lap(o.PlainSft ? "SFT + CAP" : "SFT+CAP");

        Stage(5, "DPO from SFT+CAP on correct-vs-wrong answer pairs");
        var pairsFile = Path.Combine(data, "preferences_train.jsonl");
        DemoPreferences.Write(pairsFile, DemoPreferences.Build(TaskFile.Read(trainTasks), o.Seed));
        Finish(DpoJob.Run(new DpoOptions
        {
            Model = cap, Data = pairsFile, Output = dpo,
            Settings = new DpoSettings(Beta: 0.1, ElboSamples: 2, BlockSize: o.BlockSize, ChosenNllWeight: 1.0),
            Trainer = fineTune with { Steps = o.DpoSteps, BatchSize = 8, PeakLearningRate = 1e-4 },
        }, observer, cancel));
        Lap("DPO");

        Stage(6, "scoring held-out text");
        using var arModel = LoadedModel.Load(ar);
        using var dlmModel = LoadedModel.Load(dlm);
        var docs = Data.CorpusReader.ReadDocuments([valid]).Take(200).Select(d => ScoredDocument.FromText(arModel.Tokenizer, d, o.SequenceLength * 4)).ToList();
        var arPpl = ArNllEvaluator.Evaluate(arModel.Model, docs).Perplexity;
        var bound = NelboEvaluator.Evaluate(dlmModel.Model, docs, o.BlockSize, dlmModel.MaskTokenId!.Value, dlmModel.Labels, samples: 2, seed: o.Seed).Perplexity;
        Lap("perplexity");

        var tasks = TaskFile.Read(Path.Combine(data, SyntheticCorpus.TestTasksFile));
        Stage(7, $"solving {tasks.Count} held-out tasks with every stage, one prompt at a time, on {o.ScoringThreads} thread(s)");
        var (stages, speed, arSample, dlmSample) = OnThreads(o.ScoringThreads, () => Score(o, tasks, arModel, dlmModel, dlm, sft, cap, dpo, cancel));
        Lap("tasks");

        var parameters = arModel.Model.parameters().Sum(p => p.numel());
        return new DemoReport(o, corpus, parameters, arPpl, bound, stages, speed, arSample, dlmSample, timings);
    }

    /// <summary>Stage 7: every stage on the held-out tasks, one prompt at a time; the AR parent and SFT+CAP side by side.</summary>
    private static (List<(string, TaskReport)> Stages, TaskComparison Speed, string ArSample, string DlmSample) Score(
        DemoOptions o, IReadOnlyList<TaskItem> tasks, LoadedModel arModel, LoadedModel dlmModel, string dlm, string sft, string cap, string dpo, CancellationToken cancel)
    {
        var request = new GenerationRequest { Prompt = "", Options = new DecodeOptions { MaxNewTokens = 40 } };
        var block = new BlockDecodeOptions(o.BlockSize, o.Threshold);
        var diffusion = request with { Mode = DecodeMode.Diffusion, Block = block };
        var stages = new List<(string, TaskReport)>();
        var others = o.PlainSft ? new[] { ("dLLM (converted)", dlm), ("SFT", sft), ("DPO (from SFT+CAP)", dpo) } : [("dLLM (converted)", dlm), ("DPO (from SFT+CAP)", dpo)];
        foreach (var (name, path) in others)
        {
            using var m = LoadedModel.Load(path);
            stages.Add((name, TaskEvaluator.Evaluate(m, tasks, diffusion, batchSize: 1, cancel: cancel)));
        }
        // The headline pair, side by side in interleaved passes so a drift in machine speed hits both alike.
        using var capModel = LoadedModel.Load(cap);
        var speed = TaskEvaluator.Compare(capModel, arModel, tasks, diffusion, batchSize: 1, passes: o.SpeedPasses, cancel: cancel);
        stages.Insert(0, ("AR (pre-trained)", speed.Ar));
        stages.Insert(stages.Count - 1, ("SFT+CAP", speed.Diffusion));   // before DPO, which starts from it
        var story = new GenerationRequest { Prompt = "Once upon a time", Options = new DecodeOptions { MaxNewTokens = 48 } };
        var arSample = TextGeneration.Generate(arModel, story with { Mode = DecodeMode.Ar }).Text;
        var dlmSample = TextGeneration.Generate(dlmModel, story with { Mode = DecodeMode.Diffusion, Block = block }).Text;
        return (stages, speed, arSample, dlmSample);
    }

    /// <summary>Runs <paramref name="work"/> with this many intra-op threads (0: as they are), then puts the count back.</summary>
    private static T OnThreads<T>(int threads, Func<T> work)
    {
        int before = TorchSharp.torch.get_num_threads();
        if (threads > 0) TorchSharp.torch.set_num_threads(threads);
        try { return work(); }
        finally { TorchSharp.torch.set_num_threads(before); }
    }

    private static void Finish(JobResult result)
    {
        if (result.Outcome != TrainingOutcome.Completed) throw new OperationCanceledException();
    }

    /// <summary>
    /// Runs two independent training jobs. In parallel, each gets one intra-op thread: a model this small
    /// keeps one core busy but not two, so two jobs on one core each finish sooner than one after the other
    /// on both (about 3300 tokens/s each against 3500 for one job on two cores; docs/benchmarks.md, "The demo end to end"). The view shows the first job's progress and both jobs' messages.
    /// </summary>
    internal static void SideBySide(bool parallel, ITrainingObserver observer, Func<ITrainingObserver, JobResult> first, Func<ITrainingObserver, JobResult> second)
    {
        if (!parallel || Environment.ProcessorCount < 2)
        {
            Finish(first(observer));
            Finish(second(observer));
            return;
        }
        OnThreads(1, () =>
        {
            var gate = new object();
            var jobs = new[] { new PairedView(observer, gate, Shows: true), new PairedView(observer, gate, Shows: false) };
            var runs = new[] { Task.Run(() => first(jobs[0])), Task.Run(() => second(jobs[1])) };
            // Both finish (or fail) before the thread count goes back; the first failure is the one reported.
            try { Task.WaitAll(runs); }
            catch (AggregateException e) { System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw(); }
            foreach (var run in runs) Finish(run.Result);
            return true;
        });
    }

    /// <summary>
    /// One of two jobs sharing a view: calls are serialised; only the shown job's steps reach the view, and checkpoints
    /// do not (the jobs save every few steps to average their last checkpoints; the final models are listed at the end).
    /// </summary>
    private sealed record PairedView(ITrainingObserver Inner, object Gate, bool Shows) : ITrainingObserver
    {
        public void Started(long startStep, long totalSteps, string plan) { lock (Gate) Inner.Started(startStep, totalSteps, plan); }
        public void Step(StepMetrics metrics) { if (Shows) lock (Gate) Inner.Step(metrics); }
        public void Evaluated(long step, string metric, double value) { lock (Gate) Inner.Evaluated(step, metric, value); }
        public void Checkpointed(long step, string path) { }
        public void Message(string text) { lock (Gate) Inner.Message(text); }
    }
}
