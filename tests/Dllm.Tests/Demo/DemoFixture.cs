using Dllm.Demo;
using Dllm.Tokenization;

namespace Dllm.Tests.Demo;

/// <summary>One small demo corpus and a 1000-token BPE trained on its train.txt, shared by the demo tests.</summary>
public sealed class DemoFixture : IDisposable
{
    public const int VocabSize = 1000;

    public static readonly DemoCorpusOptions Options =
        new(Stories: 1500, TasksPerKind: 300, TestTasksPerKind: 50, ValidationFraction: 0.1, Seed: 99);

    private readonly TempDirectory _root = new();

    public DemoFixture()
    {
        Summary = SyntheticCorpus.Write(CorpusDirectory, Options);
        TrainText = File.ReadAllText(Path.Combine(CorpusDirectory, SyntheticCorpus.TrainFile));
        ValidText = File.ReadAllText(Path.Combine(CorpusDirectory, SyntheticCorpus.ValidFile));
        TrainDocuments = SyntheticCorpus.ParseDocuments(TrainText);
        Tokenizer = BpeTrainer.Train(TrainDocuments, VocabSize, TokenizerDirectory);
    }

    public string CorpusDirectory => Path.Combine(_root.Path, "corpus");
    public string TokenizerDirectory => Path.Combine(_root.Path, "tokenizer");

    public DemoCorpusSummary Summary { get; }
    public string TrainText { get; }
    public string ValidText { get; }
    public List<string> TrainDocuments { get; }
    public TextTokenizer Tokenizer { get; }

    public string CorpusFile(string name) => Path.Combine(CorpusDirectory, name);

    public void Dispose() => _root.Dispose();
}

[CollectionDefinition(Name)]
public sealed class DemoCollection : ICollectionFixture<DemoFixture>
{
    public const string Name = "demo data";
}
