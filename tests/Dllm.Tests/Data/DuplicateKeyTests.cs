using Dllm.Data;
using Dllm.Evaluation;
using Dllm.FineTuning;
using Dllm.Tokenization;
using Dllm.Training;

namespace Dllm.Tests.Data;

/// <summary>
/// A JSON object with a key given twice is refused, with the file (and line), by every reader of user files: parsers
/// disagree on which copy wins, and JsonNode used to throw an ArgumentException that ended the process.
/// </summary>
public class DuplicateKeyTests
{
    private static string Write(TempDirectory dir, string name, string text)
    {
        var path = dir.File(name);
        File.WriteAllText(path, text);
        return path;
    }

    private static void AssertRefused(Action read, params string[] fragments)
    {
        var e = Assert.Throws<DllmException>(read);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    [Fact]
    public void ATaskLine()
    {
        using var dir = new TempDirectory();
        var path = Write(dir, "tasks.jsonl", "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"a\", \"prompt\": \"b\", \"answer\": \"c\"}\n");
        AssertRefused(() => TaskFile.Read(path), "line 2", "Duplicate property 'prompt'");
    }

    [Fact]
    public void AnSftLineAndAPreferenceRecord()
    {
        using var dir = new TempDirectory();
        var sft = Write(dir, "sft.jsonl", "{\"prompt\": \"a\", \"answer\": \"b\", \"answer\": \"c\"}\n");
        AssertRefused(() => ConversationReader.ReadSft(sft), "line 1", "Duplicate property 'answer'");
        var pairs = Write(dir, "pairs.json", "[{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"chosen\": \"d\"}]");
        AssertRefused(() => ConversationReader.ReadPreferences(pairs), "pairs.json", "Duplicate property 'chosen'");
    }

    [Fact]
    public void ACorpusLine()
    {
        using var dir = new TempDirectory();
        var path = Write(dir, "corpus.jsonl", "{\"text\": \"one\", \"text\": \"two\"}\n");
        AssertRefused(() => CorpusReader.ReadDocuments([path]).ToList(), "line 1", "Duplicate property 'text'");
    }

    [Fact]
    public void AScheduleFile()
    {
        using var dir = new TempDirectory();
        var path = Write(dir, "schedule.json", "{\"phases\": [{\"steps\": 2, \"block_size\": 4, \"steps\": 3}]}");
        AssertRefused(() => BlockSchedule.Load(path), "schedule.json", "Duplicate property 'steps'");
    }

    [Fact]
    public void ATokenizerJson()
    {
        using var dir = new TempDirectory();
        TinyCheckpoints.Tokenizer().Save(dir.Path);
        var path = dir.File("tokenizer.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"version\":", "\"decoder\": null, \"version\":"));
        AssertRefused(() => TextTokenizer.Load(dir.Path), "tokenizer.json", "Duplicate property");
    }
}
