using Dllm.Chat;
using Dllm.Tokenization;

namespace Dllm.FineTuning;

/// <summary>Token ids of one SFT example: the prompt (never masked, no loss) and the response to learn.</summary>
public sealed record SftExample(int[] Prompt, int[] Response);

/// <summary>Token ids of one preference pair sharing a prompt.</summary>
public sealed record PreferenceExample(int[] Prompt, int[] Chosen, int[] Rejected);

/// <summary>
/// Turns records into token ids. Raw prompt/answer records are used verbatim unless a template is
/// forced; conversations go through the chat template. Each response ends with the template's
/// end-of-turn token (else EOS), so the model learns to stop; over-long examples are cut from the
/// left of the prompt, keeping the response.
/// </summary>
public sealed class ExampleEncoder(TextTokenizer tokenizer, ChatTemplate? template, int maxLength)
{
    private readonly ChatTemplate _chat = template ?? ChatTemplate.For(tokenizer);
    private readonly bool _forceTemplate = template is not null;

    public int EndOfTurnId { get; } = (template ?? ChatTemplate.For(tokenizer)).EndOfTurn is { } eot && tokenizer.TokenToId(eot) is { } id ? id
        : tokenizer.EosId ?? throw new DllmException("the tokenizer has no EOS token, which fine-tuning needs to end responses");

    public int[] Prompt(IReadOnlyList<ChatMessage> context, bool raw)
    {
        if (raw && !_forceTemplate) return tokenizer.Encode(context[^1].Content, addSpecialTokens: true).ToArray();
        return tokenizer.Encode(_chat.Render(context, addGenerationPrompt: true), _chat.AddSpecialTokens).ToArray();
    }

    public int[] Response(string text) => [.. tokenizer.Encode(text, addSpecialTokens: false), EndOfTurnId];

    public SftExample Encode(SftRecord r) => Fit(Prompt(r.Context, r.RawPrompt), Response(r.Response));

    public PreferenceExample Encode(PreferenceRecord r)
    {
        var full = Prompt(r.Context, r.RawPrompt);
        var chosen = Fit(full, Response(r.Chosen));
        var rejected = Fit(full, Response(r.Rejected));
        var prompt = chosen.Prompt.Length <= rejected.Prompt.Length ? chosen.Prompt : rejected.Prompt;
        return new PreferenceExample(prompt, chosen.Response[..Math.Min(chosen.Response.Length, maxLength - prompt.Length)],
            rejected.Response[..Math.Min(rejected.Response.Length, maxLength - prompt.Length)]);
    }

    private SftExample Fit(int[] prompt, int[] response)
    {
        if (response.Length >= maxLength) response = response[..(maxLength / 2)];   // keep some prompt: an answer needs its question
        var room = maxLength - response.Length;
        if (prompt.Length > room) prompt = prompt[^room..];
        return new SftExample(prompt, response);
    }
}
