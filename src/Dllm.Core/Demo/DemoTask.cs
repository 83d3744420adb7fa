namespace Dllm.Demo;

/// <summary>
/// A task with one checkable answer. The model sees <see cref="Prompt"/> and must produce <see cref="Answer"/>,
/// which starts with the space that follows the prompt, so prompt + answer is the training document.
/// </summary>
public sealed record DemoTask(string Kind, string Prompt, string Answer)
{
    /// <summary>The task as one training document.</summary>
    public string Document => Prompt + Answer;
}
