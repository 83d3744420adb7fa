using System.Text;

namespace Dllm.Tokenization;

/// <summary>
/// Unicode normalisation (NFC etc.) through .NET's ICU-backed string.Normalize. Under
/// InvariantGlobalization that call silently returns its input, which would tokenise differently
/// from HF, so that case fails loudly instead.
/// </summary>
internal static class UnicodeNormalization
{
    private static readonly Lazy<bool> RuntimeNormalizes = new(() => "e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9");

    public static string Normalize(string text, NormalizationForm form)
    {
        if (Ascii.IsValid(text)) return text; // ASCII is invariant under all four forms
        if (RuntimeNormalizes.Value) return text.Normalize(form);
        throw new DllmException($"this tokenizer needs Unicode {form} normalisation, but the process runs with InvariantGlobalization (no ICU); install libicu and unset DOTNET_SYSTEM_GLOBALIZATION_INVARIANT");
    }
}
