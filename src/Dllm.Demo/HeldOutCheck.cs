namespace Dllm.Demo;

/// <summary>
/// Verifies that no held-out prompt occurs anywhere in the training documents, as text, not just as a task.
/// Every prompt starts with its kind's prefix ("Compute:"), so only places where a prefix occurs need a look.
/// </summary>
internal static class HeldOutCheck
{
    /// <exception cref="InvalidOperationException">A held-out prompt occurs in a document: a bug in the corpus writer.</exception>
    public static void Verify(IEnumerable<string> documents, IEnumerable<DemoTask> heldOut)
    {
        Dictionary<string, string[]> byPrefix = heldOut
            .GroupBy(t => t.Prompt[..(t.Prompt.IndexOf(':') + 1)], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(t => t.Prompt).ToArray(), StringComparer.Ordinal);
        foreach (string document in documents)
        {
            foreach ((string prefix, string[] prompts) in byPrefix)
            {
                for (int at = document.IndexOf(prefix, StringComparison.Ordinal); at >= 0;
                     at = document.IndexOf(prefix, at + 1, StringComparison.Ordinal))
                {
                    ReadOnlySpan<char> rest = document.AsSpan(at);
                    foreach (string prompt in prompts)
                        if (rest.StartsWith(prompt, StringComparison.Ordinal))
                            throw new InvalidOperationException($"held-out prompt '{prompt}' occurs in a training document");
                }
            }
        }
    }
}
