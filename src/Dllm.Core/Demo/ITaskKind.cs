namespace Dllm.Demo;

/// <summary>One family of checkable tasks: draws a random instance with its exact answer.</summary>
internal interface ITaskKind
{
    string Name { get; }

    DemoTask Next(SeededRandom rng);
}
