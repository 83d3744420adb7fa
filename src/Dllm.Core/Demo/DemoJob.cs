using System.Diagnostics;
using Dllm.Evaluation;
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
    public long PretrainSteps => Quick ? 250 : 1100;
    public long ConvertSteps => Quick ? 200 : 1000;
    public int BatchSize => 16;
    public int BlockSize => Quick ? 8 : 16;
}

/// <summary>What the demo measured, for its report.</summary>
public sealed record DemoReport(
    string Output, DemoCorpusSummary Corpus, int VocabSize, long Parameters,
    double ArPerplexity, double DlmNelboBound, int BlockSize,
    TaskReport ArTasks, TaskReport DlmTasks, string ArSample, string DlmSample, IReadOnlyList<(string Stage, double Seconds)> Timings);

/// <summary>
/// The embedded default, end to end and offline: synthetic corpus -> BPE tokenizer -> AR pre-training ->
/// conversion with the WSD block schedule -> evaluation of both models (held-out perplexity / NELBO
/// bound, held-out task accuracy with tokens per forward). Leaves DIR/data, DIR/tokenizer, DIR/ar, DIR/dlm.
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
        foreach (var run in new[] { ar + "-run", dlm + "-run" })
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);   // the demo always starts fresh

        observer.Message($"2/5 pre-training a small AR model ({o.Layers} layers, hidden {o.Hidden}) on {corpus.TrainDocuments:N0} documents");
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
        if (pre.Outcome != TrainingOutcome.Completed) throw new OperationCanceledException();
        Lap("AR pre-training");

        observer.Message($"3/5 converting it into a block-diffusion LM (WSD block schedule, final block {o.BlockSize})");
        var converted = ConversionJob.Run(new ConversionOptions
        {
            Model = ar,
            Data = [train],
            Output = dlm,
            SequenceLength = o.SequenceLength,
            BlockSize = o.BlockSize,
            Trainer = trainer with { Steps = o.ConvertSteps, PeakLearningRate = 2e-3, EmbeddingNoise = 0.1, EmbeddingNoiseSteps = o.ConvertSteps / 10 },
        }, observer, cancel);
        if (converted.Outcome != TrainingOutcome.Completed) throw new OperationCanceledException();
        Lap("conversion");

        observer.Message("4/5 scoring held-out text");
        using var arModel = LoadedModel.Load(ar);
        using var dlmModel = LoadedModel.Load(dlm);
        var docs = Data.CorpusReader.ReadDocuments([valid]).Take(200).Select(d => ScoredDocument.FromText(arModel.Tokenizer, d, o.SequenceLength * 4)).ToList();
        var arPpl = ArNllEvaluator.Evaluate(arModel.Model, docs).Perplexity;
        var dlmDocs = Data.CorpusReader.ReadDocuments([valid]).Take(200).Select(d => ScoredDocument.FromText(dlmModel.Tokenizer, d, o.SequenceLength * 4)).ToList();
        var bound = NelboEvaluator.Evaluate(dlmModel.Model, dlmDocs, o.BlockSize, dlmModel.MaskTokenId!.Value, samples: 2, seed: o.Seed).Perplexity;
        Lap("perplexity");

        observer.Message("5/5 solving held-out tasks with both models");
        var tasks = TaskFile.Read(Path.Combine(data, SyntheticCorpus.TestTasksFile));
        var request = new GenerationRequest { Prompt = "", Options = new DecodeOptions { MaxNewTokens = 16 } };
        var arTasks = TaskEvaluator.Evaluate(arModel, tasks, request with { Mode = DecodeMode.Ar }, cancel: cancel);
        var dlmTasks = TaskEvaluator.Evaluate(dlmModel, tasks, request with { Mode = DecodeMode.Diffusion, Block = new BlockDecodeOptions(o.BlockSize, Threshold: 0.9) }, cancel: cancel);
        var story = new GenerationRequest { Prompt = "Once upon a time", Options = new DecodeOptions { MaxNewTokens = 48 } };
        var arSample = TextGeneration.Generate(arModel, story with { Mode = DecodeMode.Ar }).Text;
        var dlmSample = TextGeneration.Generate(dlmModel, story with { Mode = DecodeMode.Diffusion, Block = new BlockDecodeOptions(o.BlockSize, Threshold: 0.9) }).Text;
        Lap("tasks");

        var parameters = arModel.Model.parameters().Sum(p => p.numel());
        return new DemoReport(o.Output, corpus, o.VocabSize, parameters, arPpl, bound, o.BlockSize, arTasks, dlmTasks, arSample, dlmSample, timings);
    }
}
