namespace Dllm.Demo;

/// <summary>
/// "Keys: q=7 b=3 x=9. What is b? ->" -> " 3": 2 to 6 distinct one-letter keys in random order, each with
/// a digit value (values may repeat); the question names one of the keys.
/// </summary>
internal sealed class RecallTasks : ITaskKind
{
    private static readonly char[] Letters = "abcdefghijklmnopqrstuvwxyz".ToCharArray();

    public string Name => "recall";

    public DemoTask Next(SeededRandom rng)
    {
        List<char> keys = rng.Sample(Letters, rng.Between(2, 6));
        int[] values = keys.Select(_ => rng.NextBelow(10)).ToArray();
        int asked = rng.NextBelow(keys.Count);
        string pairs = string.Join(' ', keys.Select((k, i) => $"{k}={values[i]}"));
        return new DemoTask(Name, $"Keys: {pairs}. What is {keys[asked]}? ->", $" {values[asked]}");
    }
}
