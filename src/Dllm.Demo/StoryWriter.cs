using System.Text;
using System.Text.RegularExpressions;

namespace Dllm.Demo;

/// <summary>
/// Writes TinyStories-like stories from <see cref="StoryWords"/>: opening, want, problem, help, happy end,
/// 4 to 8 sentences. One cast (hero, helper, place, goal) per story keeps names and pronouns consistent,
/// and each problem comes with its own fix, so the plot holds together.
/// </summary>
internal sealed partial class StoryWriter(SeededRandom rng)
{
    private const int MaxSentences = 8;
    private const double OptionalChance = 0.5;

    public string Next()
    {
        Hero hero = NextHero();
        Goal goal = rng.Pick(StoryWords.Goals);
        Obstacle obstacle = rng.Pick(goal.Obstacles);
        Helper helper = NextHelper(hero);
        Place place = goal.Place ?? rng.Pick(StoryWords.Places);
        var slots = new StorySlots(hero, helper, new Dictionary<string, string>
        {
            ["ADJ"] = rng.Pick(StoryWords.Adjectives),
            ["W"] = goal.Want,
            ["AT"] = place.At,
            ["TO"] = place.To,
            ["C"] = rng.Pick(StoryWords.Colors),
            ["A"] = rng.Pick(StoryWords.Animals),
            ["F"] = rng.Pick(StoryWords.Feelings),
        });

        // The plot in order; optional lines add variety and are dropped again if the story grows too long.
        var plan = new List<Line>();
        if (rng.Chance(0.25))
        {
            plan.Add(new Line(rng.Pick(StoryWords.CombinedOpenings), Optional: false));
            plan.Add(new Line(rng.Pick(StoryWords.Extras), Optional: true));
        }
        else
        {
            plan.Add(new Line(rng.Pick(StoryWords.Openings), Optional: false));
            plan.Add(new Line(rng.Pick(StoryWords.Extras), Optional: true));
            plan.Add(new Line(rng.Pick(StoryWords.Wants), Optional: false));
        }
        plan.Add(new Line(obstacle.Problem, Optional: false));
        plan.Add(new Line(rng.Pick(StoryWords.FeelingLines), Optional: true));
        int help = plan.Count;
        plan.Add(new Line(rng.Pick(StoryWords.HelpIntros), Optional: true));
        plan.Add(new Line(obstacle.Fix, Optional: false));
        int end = plan.Count;
        plan.Add(new Line(goal.Success, Optional: true));
        plan.Add(new Line(rng.Pick(StoryWords.Endings), Optional: false));

        var keep = plan.Select(line => !line.Optional || rng.Chance(OptionalChance)).ToArray();
        while (Enumerable.Range(0, plan.Count).Where(i => keep[i]).Sum(i => CountSentences(plan[i].Template)) > MaxSentences)
        {
            int[] optional = Enumerable.Range(0, plan.Count).Where(i => keep[i] && plan[i].Optional).ToArray();
            keep[rng.Pick(optional)] = false;
        }

        // A paragraph break before the help or before the ending, as TinyStories often has one.
        int breakBefore = rng.NextBelow(10) switch { < 3 => help, < 5 => end, _ => -1 };
        var text = new StringBuilder();
        for (int i = 0; i < plan.Count; i++)
        {
            if (i == breakBefore && text.Length > 0) text.Append('\n');
            if (!keep[i]) continue;
            if (text.Length > 0 && text[^1] != '\n') text.Append(' ');
            text.Append(Capitalize(slots.Fill(plan[i].Template)));
        }
        return text.ToString();
    }

    /// <summary>Sentences end at . ! or ? (possibly inside a closing quote) before a space or the end.</summary>
    internal static int CountSentences(string text) => SentenceEnd().Count(text);

    private Hero NextHero()
    {
        bool girl = rng.Chance(0.5);
        string name = rng.Pick(girl ? StoryWords.GirlNames : StoryWords.BoyNames);
        string kind = rng.Chance(0.6) ? (girl ? "girl" : "boy") : rng.Pick(StoryWords.AnimalKinds);
        return new Hero(name, kind, girl ? Pronouns.She : Pronouns.He);
    }

    private Helper NextHelper(Hero hero)
    {
        if (!rng.Chance(0.25)) return rng.Pick(StoryWords.Helpers);
        bool girl = rng.Chance(0.5);
        string[] names = (girl ? StoryWords.GirlNames : StoryWords.BoyNames).Where(n => n != hero.Name).ToArray();
        string name = rng.Pick(names);
        return new Helper("{P} friend " + name, name, name, girl ? Pronouns.She : Pronouns.He);
    }

    /// <summary>Upper-cases the first letter of the text and of every sentence after the first.</summary>
    private static string Capitalize(string sentence) =>
        SentenceStart().Replace(sentence, m => m.Value.ToUpperInvariant());

    private sealed record Line(string Template, bool Optional);

    [GeneratedRegex("""[.!?]"?(?=\s|$)""")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex("""(?:^|[.!?]"? )\p{Ll}""")]
    private static partial Regex SentenceStart();
}
