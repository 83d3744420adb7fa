using System.Runtime.InteropServices;
using System.Text;

namespace Dllm.Tokenization;

/// <summary>
/// Learns byte-level BPE merges from pre-token counts: start from the 256 bytes, then repeatedly merge the
/// adjacent pair with the highest count (summed over the pre-tokens it occurs in, times their frequency).
/// Ties go to the smaller left id, then the smaller right id, as in HF's trainer: bytes in byte order,
/// learned tokens by age.
/// </summary>
/// <remarks>
/// Incremental, as in HF tokenizers: an index from each pair to the words that contain it means a merge
/// touches only those words; their old pairs are subtracted and new ones added, and each pair whose count
/// changed is pushed to a max-heap again. Heap entries whose count is out of date are skipped when popped.
/// Counting follows HF: a pair counts at every position it occupies, overlaps included ("aaa" has two "a a").
/// </remarks>
internal sealed class BpeMergeLearner
{
    private readonly int[][] _words;
    private readonly int[] _lengths;
    private readonly long[] _counts;
    private readonly Dictionary<long, long> _pairCounts = [];
    private readonly Dictionary<long, HashSet<int>> _pairWords = [];
    // Min-heap on (-count, pair): the highest count first, then the smallest (left, right).
    private readonly PriorityQueue<long, (long NegativeCount, long Pair)> _queue = new();
    private readonly List<string> _tokens = [];
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<(string, string)> _merges = [];
    private readonly HashSet<long> _merged = [];

    private BpeMergeLearner(IReadOnlyDictionary<string, long> preTokenCounts)
    {
        for (int b = 0; b < 256; b++) AddToken(Tokenization.ByteLevelAlphabet.Of((byte)b).ToString());

        // Ordinal order makes the word indices, and so any iteration over them, independent of dictionary order.
        string[] words = preTokenCounts.Keys.Order(StringComparer.Ordinal).ToArray();
        _words = new int[words.Length][];
        _lengths = new int[words.Length];
        _counts = new long[words.Length];
        for (int w = 0; w < words.Length; w++)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(words[w]);
            _words[w] = Array.ConvertAll(bytes, b => (int)b);
            _lengths[w] = bytes.Length;
            _counts[w] = preTokenCounts[words[w]];
            for (int i = 0; i + 1 < bytes.Length; i++)
            {
                long pair = Pair(bytes[i], bytes[i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(_pairCounts, pair, out _) += _counts[w];
                WordsOf(pair).Add(w);
            }
        }
        foreach ((long pair, long count) in _pairCounts) _queue.Enqueue(pair, (-count, pair));
    }

    /// <exception cref="DllmException">The text runs out of pairs before the vocabulary reaches <paramref name="vocabSize"/>.</exception>
    public static LearnedBpe Learn(IReadOnlyDictionary<string, long> preTokenCounts, int vocabSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 256);
        var learner = new BpeMergeLearner(preTokenCounts);
        while (learner._tokens.Count < vocabSize)
        {
            if (!learner.TryPopBest(out long pair))
                throw new DllmException(
                    $"the training text has only enough pairs for {learner._tokens.Count} tokens, not {vocabSize}: give more text or a smaller vocabulary");
            learner.Merge(pair);
        }
        return new LearnedBpe(learner._tokens.ToArray(), learner._merges.ToArray());
    }

    private bool TryPopBest(out long pair)
    {
        while (_queue.TryDequeue(out pair, out var priority))
            if (_pairCounts.TryGetValue(pair, out long count) && count == -priority.NegativeCount) return true;
        return false;
    }

    private void Merge(long pair)
    {
        int left = (int)(pair >> 32), right = (int)(pair & uint.MaxValue);
        string merged = _tokens[left] + _tokens[right];
        // Two different splits can spell the same token ("a"+"bc", "ab"+"c"): it keeps one id, as in HF.
        int id = _ids.TryGetValue(merged, out int existing) ? existing : AddToken(merged);
        // A pair can only form again through such a shared token; its rank stays the first one.
        if (_merged.Add(pair)) _merges.Add((_tokens[left], _tokens[right]));

        _pairWords.Remove(pair, out HashSet<int>? words);
        var before = new Dictionary<long, long>();
        foreach (int w in words!) MergeInWord(w, left, right, id, before);
        foreach ((long changed, long old) in before)
        {
            long now = _pairCounts.GetValueOrDefault(changed);
            if (now == 0)
            {
                _pairCounts.Remove(changed);
                _pairWords.Remove(changed);
            }
            else if (now != old)
            {
                _queue.Enqueue(changed, (-now, changed));
            }
        }
    }

    /// <summary>Replaces every (left, right) in the word, left to right without overlap, and updates the pair counts.</summary>
    private void MergeInWord(int w, int left, int right, int id, Dictionary<long, long> before)
    {
        int[] symbols = _words[w];
        int length = _lengths[w];
        long count = _counts[w];
        if (!Contains(symbols, length, left, right)) return; // the index may list words that lost the pair already

        for (int i = 0; i + 1 < length; i++) AddCount(Pair(symbols[i], symbols[i + 1]), -count, before);
        int kept = 0;
        for (int i = 0; i < length; kept++)
        {
            bool match = i + 1 < length && symbols[i] == left && symbols[i + 1] == right;
            symbols[kept] = match ? id : symbols[i];
            i += match ? 2 : 1;
        }
        _lengths[w] = kept;
        for (int i = 0; i + 1 < kept; i++)
        {
            long pair = Pair(symbols[i], symbols[i + 1]);
            AddCount(pair, count, before);
            WordsOf(pair).Add(w);
        }
    }

    private void AddCount(long pair, long delta, Dictionary<long, long> before)
    {
        ref long count = ref CollectionsMarshal.GetValueRefOrAddDefault(_pairCounts, pair, out _);
        before.TryAdd(pair, count);
        count += delta;
    }

    private static bool Contains(int[] symbols, int length, int left, int right)
    {
        for (int i = 0; i + 1 < length; i++)
            if (symbols[i] == left && symbols[i + 1] == right) return true;
        return false;
    }

    private HashSet<int> WordsOf(long pair)
    {
        ref HashSet<int>? words = ref CollectionsMarshal.GetValueRefOrAddDefault(_pairWords, pair, out _);
        return words ??= [];
    }

    private int AddToken(string token)
    {
        _ids.Add(token, _tokens.Count);
        _tokens.Add(token);
        return _tokens.Count - 1;
    }

    private static long Pair(int left, int right) => ((long)left << 32) | (uint)right;
}
