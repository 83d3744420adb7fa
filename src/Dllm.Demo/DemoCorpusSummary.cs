namespace Dllm.Demo;

/// <summary>What <see cref="SyntheticCorpus.Write"/> put in each file. Byte counts are of the UTF-8 files.</summary>
/// <param name="TrainDocuments">Documents in train.txt (stories plus tasks).</param>
/// <param name="ValidDocuments">Documents in valid.txt (stories plus tasks).</param>
/// <param name="TrainStories">Stories among the train.txt documents.</param>
/// <param name="TrainTasks">Tasks in train.txt, also listed in tasks_train.jsonl.</param>
/// <param name="ValidTasks">Tasks in valid.txt (not in tasks_train.jsonl).</param>
/// <param name="TestTasks">Held-out tasks in tasks_test.jsonl.</param>
public sealed record DemoCorpusSummary(
    int TrainDocuments,
    int ValidDocuments,
    int TrainStories,
    int TrainTasks,
    int ValidTasks,
    int TestTasks,
    long TrainBytes,
    long ValidBytes);
