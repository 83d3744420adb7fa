namespace Dllm.Demo;

internal sealed record Pronouns(string Subject, string Object, string Possessive)
{
    public static readonly Pronouns She = new("she", "her", "her");
    public static readonly Pronouns He = new("he", "him", "his");
}

/// <summary>A story's main character.</summary>
internal sealed record Hero(string Name, string Kind, Pronouns Pronouns);

/// <summary>
/// Who solves the problem. <see cref="Intro"/> is used at the first mention and <see cref="Short"/> after it
/// ("a kind old man", then "the old man"; "her mom", then "Mom"); <see cref="Address"/> is how the hero thanks them, if by name.
/// </summary>
internal sealed record Helper(string Intro, string Short, string? Address, Pronouns Pronouns);

internal sealed record Place(string At, string To);

/// <summary>A problem sentence and the helper's fix for exactly that problem.</summary>
internal sealed record Obstacle(string Problem, string Fix);

/// <summary>What the hero wants; <see cref="Place"/> pins the setting when the goal needs one (a boat needs water).</summary>
internal sealed record Goal(string Want, string Success, Obstacle[] Obstacles, Place? Place = null);

/// <summary>
/// The word tables of the story grammar. Templates use slots that <see cref="StoryWriter"/> fills:
/// {N} hero name, {K} hero kind, {ADJ} hero adjective, {S}/{O}/{P} hero pronouns (she/her/her),
/// {H} helper (intro at first use, short after), {HP} helper possessive, {HA} ", Mom" or "" for "Thank you{HA}!",
/// {W} the goal's want phrase, {AT}/{TO} place phrases, {C} a colour, {A} an animal, {F} a feeling.
/// Every noun after "a" starts with a consonant, so no template needs "an".
/// </summary>
internal static class StoryWords
{
    public static readonly string[] GirlNames =
        ["Lily", "Mia", "Sue", "Anna", "Lucy", "Emma", "Zoe", "Ella", "Amy", "Rosa", "Kim", "Nora", "Ivy", "Jane", "Sara", "Maya"];

    public static readonly string[] BoyNames =
        ["Tom", "Ben", "Max", "Sam", "Leo", "Jack", "Tim", "Finn", "Joe", "Noah", "Eli", "Dan", "Ravi", "Omar", "Alex", "Kai"];

    public static readonly string[] AnimalKinds = ["cat", "dog", "bunny", "bear", "bird", "duck", "fox", "mouse", "frog", "puppy", "kitten"];

    public static readonly string[] Adjectives =
        ["little", "small", "happy", "kind", "curious", "brave", "shy", "playful", "clever", "friendly", "young", "cheerful"];

    public static readonly string[] Colors = ["red", "blue", "green", "yellow", "pink", "purple", "orange", "white"];

    public static readonly string[] Animals = ["bear", "rabbit", "horse", "dinosaur", "lion", "fox", "cat", "dog", "tiger", "duck"];

    public static readonly string[] Feelings = ["sad", "upset", "worried", "scared", "sad and lonely"];

    private static readonly Place Beach = new("on the beach", "to the beach");
    private static readonly Place Lake = new("by the lake", "to the lake");
    private static readonly Place Garden = new("in the garden", "to the garden");

    public static readonly Place[] Places =
    [
        new("in the park", "to the park"), new("in the forest", "to the forest"), Beach, Garden,
        new("on the farm", "to the farm"), Lake, new("on the hill", "up the hill"), new("in the town", "to the town"),
        new("near the school", "to the school"), new("in the yard", "to the yard"),
    ];

    // Besides these, a friend with a name other than the hero's is made per story.
    public static readonly Helper[] Helpers =
    [
        new("{P} mom", "Mom", "Mom", Pronouns.She),
        new("{P} dad", "Dad", "Dad", Pronouns.He),
        new("{P} grandma", "Grandma", "Grandma", Pronouns.She),
        new("{P} grandpa", "Grandpa", "Grandpa", Pronouns.He),
        new("{P} big sister", "{P} sister", null, Pronouns.She),
        new("{P} big brother", "{P} brother", null, Pronouns.He),
        new("a kind old man", "the old man", null, Pronouns.He),
        new("a nice lady", "the lady", null, Pronouns.She),
        new("a wise old owl", "the owl", null, Pronouns.He),
        new("a friendly dog", "the dog", null, Pronouns.She),
    ];

    // Openings name the hero; the combined ones also say what the hero wants.
    public static readonly string[] Openings =
    [
        "Once upon a time, there was a {ADJ} {K} named {N}.",
        "There was once a {ADJ} {K} called {N}.",
        "{N} was a {ADJ} {K} who lived {AT}.",
        "Once there was a {ADJ} {K}. {P} name was {N}.",
    ];

    public static readonly string[] CombinedOpenings =
    [
        "Once upon a time, a {ADJ} {K} named {N} wanted to {W}.",
        "One day, a {ADJ} {K} named {N} went {TO} to {W}.",
    ];

    public static readonly string[] Extras =
    [
        "{S} lived {AT} with {P} family.",
        "{S} liked to play {AT} every day.",
        "{S} loved the color {C}.",
        "Every morning, {S} went {TO} to play.",
        "{S} had many friends and liked to laugh.",
    ];

    public static readonly string[] Wants =
    [
        "One day, {S} wanted to {W}.",
        "{N} really wanted to {W}.",
        "One sunny morning, {N} went {TO} because {S} wanted to {W}.",
        "More than anything, {N} wanted to {W}.",
    ];

    public static readonly string[] FeelingLines =
    [
        "{N} felt {F}.",
        "{S} was very {F} and started to cry.",
        "{N} did not know what to do.",
        "{S} sat down and felt {F}.",
    ];

    public static readonly string[] HelpIntros =
    [
        "Just then, {H} came by.",
        "{H} saw {O} and asked, \"Why are you sad?\"",
        "{N} asked {H} for help.",
        "{H} heard {O} and said, \"Do not worry, I can help you.\"",
    ];

    public static readonly string[] Endings =
    [
        "{N} was very happy and said, \"Thank you{HA}!\"",
        "{N} smiled and gave {H} a big hug.",
        "{N} and {H} played together until the sun went down.",
        "{N} learned that it is good to ask for help.",
        "It was the best day ever.",
        "That night, {N} went to bed with a big smile.",
    ];

    public static readonly Goal[] Goals =
    [
        new("fly {P} {C} kite", "Soon the {C} kite was flying high in the sky.",
        [
            new("But the wind blew hard, and the kite got stuck in a tall tree.", "{H} climbed the tree and got the kite down."),
            new("But the string broke, and the kite fell into a thorny bush.", "{H} pulled the kite out of the bush and tied a new string to it."),
        ]),
        new("play with {P} {C} ball", "{N} kicked the ball again and laughed.",
        [
            new("But the ball rolled into the pond.", "{H} found a long stick and pulled the ball out of the water."),
            new("But the ball flew over the fence.", "{H} opened the gate and brought the ball back."),
        ]),
        new("build a tall tower with {P} blocks", "The new tower was even taller than before.",
        [
            new("But the tower fell down with a loud crash.", "{H} helped {O} build it again, one block at a time."),
            new("But one block was missing.", "{H} found the missing block under the bed."),
        ]),
        new("bake a cake for {P} friend", "The cake was soft and sweet.",
        [
            new("But there were no eggs in the kitchen.", "{H} went to the store and bought some eggs."),
            new("But {S} could not reach the flour on the high shelf.", "{H} took the flour down from the shelf."),
        ]),
        new("find a pretty shell", "{N} put the shell in {P} pocket to keep it safe.",
        [
            new("But the big waves kept washing the shells away.", "{H} showed {O} a quiet spot behind the rocks where many shells were hiding."),
            new("But all the shells {S} found were broken.", "{H} helped {O} dig in the sand, and they found a shiny {C} shell."),
        ], Beach),
        new("play with {P} toy {A}", "{N} hugged the toy {A} tight.",
        [
            new("But {S} could not find it anywhere.", "{H} helped {O} look, and they found it under the bed."),
            new("But the arm of the toy {A} came off.", "{H} sewed the arm back on with a needle and thread."),
        ]),
        new("climb the big old tree", "From the top, {S} could see the whole town.",
        [
            new("But {S} was too small to reach the first branch.", "{H} brought a ladder and held it still."),
            new("But the bark was wet and slippery from the rain.", "{H} waited for the sun to dry the tree and then helped {O} climb."),
        ]),
        new("sail {P} little {C} boat", "The little boat floated across the water.",
        [
            new("But the boat had a small hole in it.", "{H} fixed the hole with some tape."),
            new("But there was no wind to push the boat.", "{H} showed {O} how to blow on the sail."),
        ], Lake),
        new("sing a song at the party", "Everyone clapped when the song was over.",
        [
            new("But {S} felt shy and could not sing.", "{H} sang with {O}, and soon {S} was not shy anymore."),
            new("But {S} forgot the words of the song.", "{H} helped {O} remember the words."),
        ]),
        new("draw a picture of a {A}", "The picture of the {A} was beautiful.",
        [
            new("But {P} {C} crayon broke in two.", "{H} shared {HP} crayons with {O}."),
            new("But the {A} did not look right.", "{H} showed {O} how to draw big round ears."),
        ]),
        new("pick flowers for {P} teacher", "The teacher loved the flowers.",
        [
            new("But the flowers grew on the other side of a little river.", "{H} helped {O} jump across on the big stones."),
            new("But a big bee was sitting on the flowers.", "{H} waited with {O} until the bee flew away."),
        ]),
        new("play with {P} puppy", "The puppy wagged its tail and licked {P} face.",
        [
            new("But the puppy ran away into the forest.", "{H} helped {O} call the puppy, and it came running back."),
            new("But the puppy was hiding and would not come out.", "{H} gave {O} a treat to show the puppy."),
        ]),
        new("ride {P} new {C} bike", "Soon {S} was riding fast and laughing.",
        [
            new("But {S} fell down and hurt {P} knee.", "{H} put a bandage on {P} knee and held the bike steady."),
            new("But the bike had a flat tire.", "{H} pumped air into the tire."),
        ]),
        new("build a big snowman", "The snowman had a carrot nose and a {C} hat.",
        [
            new("But the snow was too wet and soft.", "{H} showed {O} how to roll the snow into big balls."),
            new("But {S} could not lift the head onto the body.", "{H} lifted the head up and put it on top."),
        ]),
        new("pick red apples from the tree", "{N} took a big bite of a sweet apple.",
        [
            new("But the apples were too high to reach.", "{H} lifted {O} up so {S} could reach them."),
            new("But {P} basket had a hole in the bottom.", "{H} gave {O} a new basket."),
        ]),
        new("read a book about the stars", "{N} learned many new things about the stars.",
        [
            new("But some of the words were too hard.", "{H} sat down and read the book with {O}."),
            new("But it was too dark to see the pages.", "{H} turned on a little lamp."),
        ]),
        new("swim", "{N} splashed and swam like a fish.",
        [
            new("But the water looked deep, and {S} was scared.", "{H} held {P} hand and swam next to {O}."),
            new("But {S} did not know how to swim.", "{H} showed {O} how to kick {P} legs and move {P} arms."),
        ], Lake),
        new("plant seeds", "A few days later, little green plants came up.",
        [
            new("But the ground was too hard to dig.", "{H} gave {O} a small shovel."),
            new("But a bird kept eating the seeds.", "{H} made a funny scarecrow to keep the bird away."),
        ], Garden),
    ];
}
