namespace Dllm.Demo;

/// <summary>
/// "Copy: red blue cat ->" -> " red blue cat" and "Reverse: one two three ->" -> " three two one":
/// 2 to 5 distinct words from a fixed list of common story words (so each is about one token).
/// </summary>
internal sealed class WordSequenceTasks : ITaskKind
{
    private static readonly string[] Words =
    [
        "red", "blue", "green", "yellow", "pink", "white", "black", "big", "small", "happy", "sad", "cat",
        "dog", "bird", "fish", "frog", "duck", "bear", "fox", "ball", "kite", "cake", "tree", "boat", "book",
        "sun", "moon", "star", "hat", "box", "cup", "apple", "flower", "park", "house", "one", "two", "three",
        "four", "five", "six", "seven", "eight", "nine", "ten", "run", "jump", "sing",
    ];

    private readonly bool _reverse;

    private WordSequenceTasks(bool reverse) => _reverse = reverse;

    public static WordSequenceTasks Copy { get; } = new(reverse: false);
    public static WordSequenceTasks Reverse { get; } = new(reverse: true);

    public string Name => _reverse ? "reverse" : "copy";

    public DemoTask Next(SeededRandom rng)
    {
        List<string> words = rng.Sample(Words, rng.Between(2, 5));
        string prompt = $"{(_reverse ? "Reverse" : "Copy")}: {string.Join(' ', words)} ->";
        if (_reverse) words.Reverse();
        return new DemoTask(Name, prompt, " " + string.Join(' ', words));
    }
}
