using System.Text;
using Dllm.Demo;
using Dllm.Tokenization;

namespace Dllm.Tests.Tokenization;

public sealed class BpeMergeLearnerTests
{
    /// <summary>
    /// Reference BPE: recount every pair from scratch before each merge. Same rules as the learner: a pair
    /// counts at every position (overlaps too), highest count wins, ties go to the smaller (left id, right id),
    /// and a merge is applied left to right without overlap.
    /// </summary>
    private static List<(string, string)> NaiveMerges(IReadOnlyDictionary<string, long> counts, int vocabSize)
    {
        var bytes = Enumerable.Range(0, 256).Select(b => new[] { (byte)b }).ToList(); // token id -> its bytes
        var words = counts.Select(p => (Symbols: Encoding.UTF8.GetBytes(p.Key).Select(b => (int)b).ToList(), Count: p.Value)).ToList();
        var merges = new List<(string, string)>();
        while (bytes.Count < vocabSize)
        {
            var pairs = new Dictionary<(int, int), long>();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    pairs[(symbols[i], symbols[i + 1])] = pairs.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            var ((left, right), _) = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1).ThenBy(p => p.Key.Item2).First();
            byte[] merged = [.. bytes[left], .. bytes[right]];
            int id = bytes.FindIndex(b => b.AsSpan().SequenceEqual(merged));
            if (id < 0)
            {
                id = bytes.Count;
                bytes.Add(merged);
            }
            merges.Add((Convert.ToHexString(bytes[left]), Convert.ToHexString(bytes[right])));
            foreach (var (symbols, _) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == left && symbols[i + 1] == right)
                    {
                        symbols[i] = id;
                        symbols.RemoveAt(i + 1);
                    }
        }
        return merges;
    }

    [Fact]
    public void IncrementalCountsGiveTheSameMergesAsRecountingEveryStep()
    {
        var text = string.Join("\n", SyntheticCorpus.Stories(150, 3))
                   + string.Concat(SyntheticCorpus.Kinds.SelectMany(k => SyntheticCorpus.Tasks(k, 50, 3)).Select(t => t.Prompt + t.Answer + "\n"))
                   + "aaaa aaa aaaaa baaab ababab"; // runs where pairs overlap
        Dictionary<string, long> counts = PreTokenCounter.Count([text], BpeTrainer.Pattern, []);

        LearnedBpe learned = BpeMergeLearner.Learn(counts, 700);

        Assert.Equal(NaiveMerges(counts, 700), learned.Merges.Select(m => (Hex(m.Left), Hex(m.Right))));
        Assert.Equal(700, learned.Tokens.Count);
    }

    [Fact]
    public void OverlappingPairsCountAtEveryPositionButMergeWithoutOverlap()
    {
        // "aaa" x 3: a a counts 2 per word = 6; merging gives [aa a], so the next pair is aa a (3), giving "aaa".
        LearnedBpe learned = BpeMergeLearner.Learn(new Dictionary<string, long> { ["aaa"] = 3 }, 258);
        Assert.Equal([("a", "a"), ("aa", "a")], learned.Merges);
        Assert.Equal(["aa", "aaa"], learned.Tokens.Skip(256));
        Assert.Throws<DllmException>(() => BpeMergeLearner.Learn(new Dictionary<string, long> { ["aaa"] = 3 }, 259));
    }

    /// <summary>A byte-level token spelt as the hex of its bytes, the reference's spelling.</summary>
    private static string Hex(string token) =>
        Convert.ToHexString(token.Select(c => (byte)Enumerable.Range(0, 256).First(b => Dllm.Tokenization.ByteLevelAlphabet.Of((byte)b) == c)).ToArray());
}
