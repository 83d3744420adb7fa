using System.Text.RegularExpressions;

namespace Dllm.Demo;

/// <summary>
/// Fills a story template's {SLOT}s for one cast. Slot values may hold slots themselves ("{P} mom"), which
/// are filled in turn. The helper is introduced at the first {H} and called by the short name after it, so
/// the lines must be filled in story order.
/// </summary>
internal sealed partial class StorySlots(Hero hero, Helper helper, IReadOnlyDictionary<string, string> values)
{
    private bool _helperMet;

    public string Fill(string template) => Slot().Replace(template, m => Fill(Value(m.Groups[1].Value)));

    private string Value(string slot)
    {
        switch (slot)
        {
            case "N": return hero.Name;
            case "K": return hero.Kind;
            case "S": return hero.Pronouns.Subject;
            case "O": return hero.Pronouns.Object;
            case "P": return hero.Pronouns.Possessive;
            case "HP": return helper.Pronouns.Possessive;
            case "HA": return helper.Address is null ? "" : ", " + helper.Address;
            case "H":
                bool first = !_helperMet;
                _helperMet = true;
                return first ? helper.Intro : helper.Short;
        }
        return values.TryGetValue(slot, out string? value)
            ? value
            : throw new InvalidOperationException($"story template slot {{{slot}}} has no value");
    }

    [GeneratedRegex(@"\{([A-Z]+)\}")]
    private static partial Regex Slot();
}
