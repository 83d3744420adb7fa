using System.Diagnostics;
using Dllm.Evaluation;
using Dllm.FineTuning;
using Dllm.Generation;
using Dllm.Models;
using Dllm.Training;

namespace Dllm.Demo;

/// <summary>Sizes of the embedded demo: the full run fits in 10 minutes on 2 cores, the quick one in 2.</summary>
public sealed record DemoOptions(string Output, bool Quick, long Seed = 1234)
{
    public DemoCorpusOptions Corpus => Quick
        ? new DemoCorpusOptions(Stories: 1500, TasksPerKind: 400, TestTasksPerKind: 25, Seed: Seed)
        : new DemoCorpusOptions(Stories: 6000, TasksPerKind: 1500, TestTasksPerKind: 50, Seed: Seed);
    public int VocabSize => Quick ? 512 : 1000;
    public int SequenceLength => 128;
    public int Hidden => 128;
    public int Layers => 4;
    public long PretrainSteps => Quick ? 220 : 1100;
    public long ConvertSteps => Quick ? 180 : 1000;
    public long SftSteps => Quick ? 80 : 300;
    public long DpoSteps => Quick ? 40 : 150;
    public int BatchSize => 16;
    public int BlockSize => Quick ? 8 : 16;
}

/// <summary>What the demo measured, for its report.</summary>
public sealed record DemoReport(
    string Output, DemoCorpusSummary Corpus, int VocabSize, long Parameters,
    double ArPerplexity, double DlmNelboBound, int BlockSize, double Threshold,
    IReadOnlyList<(string Stage, TaskReport Tasks)> Stages, string ArSample, string DlmSample, IReadOnlyList<(string Stage, double Seconds)> Timings);

/// <summary>
/// The embedded default, end to end and offline: synthetic corpus -> BPE tokenizer -> AR pre-training ->
/// conversion with the WSD block schedule -> SFT and SFT+CAP on the training tasks (same budget, same
/// start) -> DPO on correct-vs-wrong answer pairs -> held-out perplexity, NELBO bound, and task accuracy
/// with tokens per forward at threshold 0.9 for every stage. Leaves DIR/data, DIR/tokenizer, DIR/ar,
/// DIR/dlm, DIR/sft, DIR/cap, DIR/dpo.
/// </summary>
public static class DemoJob
{
    public static DemoReport Run(DemoOptions o, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        observer ??= NullObserver.Instance;
        var timings = new List<(string, double)>();
        var clock = Stopwatch.StartNew();
        void Lap(string stage) { timings.Add((stage, clock.Elapsed.TotalSeconds)); clock.Restart(); }

        var data = Path.Combine(o.Output, "data");
        observer.Message($"1/5 writing the synthetic corpus to {data}");
        var corpus = SyntheticCorpus.Write(data, o.Corpus);
        var train = Path.Combine(data, SyntheticCorpus.TrainFile);
        var valid = Path.Combine(data, SyntheticCorpus.ValidFile);
        var tokenizerDir = Path.Combine(o.Output, "tokenizer");
        BpeTrainer.Train(SyntheticCorpus.ParseDocuments(File.ReadAllText(train)), o.VocabSize, tokenizerDir);
        Lap("corpus + tokenizer");

        var ar = Path.Combine(o.Output, "ar");
        var dlm = Path.Combine(o.Output, "dlm");
        var sft = Path.Combine(o.Output, "sft");
        var cap = Path.Combine(o.Output, "cap");
        var dpo = Path.Combine(o.Output, "dpo");
        foreach (var model in new[] { ar, dlm, sft, cap, dpo })
            if (Directory.Exists(model + "-run")) Directory.Delete(model + "-run", recursive: true);   // the demo always starts fresh

        observer.Message($"2/7 pre-training a small AR model ({o.Layers} layers, hidden {o.Hidden}) on {corpus.TrainDocuments:N0} documents");
        var trainer = new TrainerOptions
        {
            BatchSize = o.BatchSize,
            PeakLearningRate = 3e-3,
            Seed = o.Seed,
            EvalEvery = 100,
            CheckpointEvery = 100_000,
            KeepLast = 1,
            AdamW = new AdamWOptions(WeightDecay: 0.05),
        };
        var pre = PretrainJob.Run(new PretrainOptions
        {
            Tokenizer = tokenizerDir,
            Config = ModelPresets.Llama(o.Hidden, o.Layers, heads: 4, kvHeads: 2, ffn: 0, context: 512),
            Data = [train],
            Output = ar,
            SequenceLength = o.SequenceLength,
            Trainer = trainer with { Steps = o.PretrainSteps },
        }, observer, cancel);
        Finish(pre);
        Lap("AR pre-training");

        observer.Message($"3/7 converting it into a block-diffusion LM (WSD block schedule, final block {o.BlockSize})");
        var converted = ConversionJob.Run(new ConversionOptions
        {
            Model = ar,
            Data = [train],
            Output = dlm,
            SequenceLength = o.SequenceLength,
            BlockSize = o.BlockSize,
            Trainer = trainer with { Steps = o.ConvertSteps, PeakLearningRate = 2e-3, EmbeddingNoise = 0.1, EmbeddingNoiseSteps = o.ConvertSteps / 10 },
        }, observer, cancel);
        Finish(converted);
        Lap("conversion");

        observer.Message("4/7 supervised fine-tuning on the training tasks: plain SFT, then SFT+CAP from the same start");
        var trainTasks = Path.Combine(data, SyntheticCorpus.TrainTasksFile);
        var fineTune = trainer with { Steps = o.SftSteps, PeakLearningRate = 1e-3, EvalEvery = 100_000 };
        var sftSettings = new SftSettings(o.BlockSize);
        Finish(SftJob.Run(new SftOptions { Model = dlm, Data = trainTasks, Output = sft, Settings = sftSettings, Trainer = fineTune }, observer, cancel));
        Finish(SftJob.Run(new SftOptions { Model = dlm, Data = trainTasks, Output = cap, Settings = sftSettings with { CapWeight = 2.0 }, Trainer = fineTune }, observer, cancel));
        Lap("SFT + CAP");

        observer.Message("5/7 DPO from the SFT model on correct-vs-wrong answer pairs");
        var pairsFile = Path.Combine(data, "preferences_train.jsonl");
        DemoPreferences.Write(pairsFile, DemoPreferences.Build(TaskFile.Read(trainTasks), o.Seed));
        Finish(DpoJob.Run(new DpoOptions
        {
            Model = sft, Data = pairsFile, Output = dpo,
            Settings = new DpoSettings(Beta: 0.1, ElboSamples: 2, BlockSize: o.BlockSize),
            Trainer = fineTune with { Steps = o.DpoSteps, BatchSize = 8, PeakLearningRate = 1e-4 },
        }, observer, cancel));
        Lap("DPO");

        observer.Message("6/7 scoring held-out text");
        using var arModel = LoadedModel.Load(ar);
        using var dlmModel = LoadedModel.Load(dlm);
        var docs = Data.CorpusReader.ReadDocuments([valid]).Take(200).Select(d => ScoredDocument.FromText(arModel.Tokenizer, d, o.SequenceLength * 4)).ToList();
        var arPpl = ArNllEvaluator.Evaluate(arModel.Model, docs).Perplexity;
        var bound = NelboEvaluator.Evaluate(dlmModel.Model, docs, o.BlockSize, dlmModel.MaskTokenId!.Value, dlmModel.Labels, samples: 2, seed: o.Seed).Perplexity;
        Lap("perplexity");

        observer.Message($"7/7 solving {o.Corpus.TestTasksPerKind * 4} held-out tasks with every stage");
        var tasks = TaskFile.Read(Path.Combine(data, SyntheticCorpus.TestTasksFile));
        var request = new GenerationRequest { Prompt = "", Options = new DecodeOptions { MaxNewTokens = 16 } };
        var block = new BlockDecodeOptions(o.BlockSize, Threshold);
        var stages = new List<(string, TaskReport)> { ("AR (pre-trained)", TaskEvaluator.Evaluate(arModel, tasks, request with { Mode = DecodeMode.Ar }, cancel: cancel)) };
        foreach (var (name, path) in new[] { ("dLLM (converted)", dlm), ("SFT", sft), ("SFT+CAP", cap), ("DPO", dpo) })
        {
            using var m = LoadedModel.Load(path);
            stages.Add((name, TaskEvaluator.Evaluate(m, tasks, request with { Mode = DecodeMode.Diffusion, Block = block }, cancel: cancel)));
        }
        var story = new GenerationRequest { Prompt = "Once upon a time", Options = new DecodeOptions { MaxNewTokens = 48 } };
        var arSample = TextGeneration.Generate(arModel, story with { Mode = DecodeMode.Ar }).Text;
        var dlmSample = TextGeneration.Generate(dlmModel, story with { Mode = DecodeMode.Diffusion, Block = block }).Text;
        Lap("tasks");

        var parameters = arModel.Model.parameters().Sum(p => p.numel());
        return new DemoReport(o.Output, corpus, o.VocabSize, parameters, arPpl, bound, o.BlockSize, Threshold, stages, arSample, dlmSample, timings);
    }

    /// <summary>The decoding threshold the demo reports at.</summary>
    public const double Threshold = 0.9;

    private static void Finish(JobResult result)
    {
        if (result.Outcome != TrainingOutcome.Completed) throw new OperationCanceledException();
    }
}
