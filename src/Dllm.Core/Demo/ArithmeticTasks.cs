using System.Globalization;

namespace Dllm.Demo;

/// <summary>
/// "Compute: 47 + 38 =" -> " 85" and "Compute: 85 - 38 =" -> " 47". Operands have 1 to 3 digits (mostly 2-3);
/// subtraction puts the larger operand first, so answers are never negative.
/// </summary>
internal sealed class ArithmeticTasks : ITaskKind
{
    // Digit counts to draw from: one-digit operands are rare, since they teach little about carrying.
    private static readonly int[] Digits = [1, 2, 2, 3, 3];

    public string Name => "arithmetic";

    public DemoTask Next(SeededRandom rng)
    {
        int a = Operand(rng), b = Operand(rng);
        bool add = rng.Chance(0.5);
        if (!add && a < b) (a, b) = (b, a);
        int result = add ? a + b : a - b;
        return new DemoTask(Name, Invariant($"Compute: {a} {(add ? '+' : '-')} {b} ="), Invariant($" {result}"));
    }

    private static int Operand(SeededRandom rng)
    {
        int digits = rng.Pick(Digits);
        return digits == 1 ? rng.NextBelow(10) : rng.Between((int)Math.Pow(10, digits - 1), (int)Math.Pow(10, digits) - 1);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
