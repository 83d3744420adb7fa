using System.Runtime.InteropServices;
using System.Text;

namespace Dllm.Tokenization;

/// <summary>
/// Unicode normalisation (NFC etc.) that works even though the solution runs with InvariantGlobalization,
/// where string.Normalize silently returns its input. We then call the system ICU library directly; if
/// neither is available, text that could change fails loudly instead of being tokenised differently from HF.
/// </summary>
internal static class UnicodeNormalization
{
    private static readonly Lazy<bool> RuntimeNormalizes = new(() => "e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9");

    public static string Normalize(string text, NormalizationForm form)
    {
        if (Ascii.IsValid(text)) return text; // ASCII is invariant under all four forms
        if (RuntimeNormalizes.Value) return text.Normalize(form);
        return Icu.Normalize(text, form)
            ?? throw new DllmException(
                $"this tokenizer needs Unicode {form} normalisation, but the process runs with InvariantGlobalization " +
                "and no ICU library (libicuuc) was found; install libicu or disable InvariantGlobalization");
    }

    /// <summary>Late-bound unorm2_* calls; ICU suffixes its exported names with its major version.</summary>
    private static class Icu
    {
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate IntPtr GetInstanceFn(ref int errorCode);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int NormalizeFn(IntPtr normalizer, IntPtr source, int length, IntPtr destination, int capacity, ref int errorCode);

        private const int BufferOverflowError = 15; // U_BUFFER_OVERFLOW_ERROR

        private static readonly Lazy<Binding?> Bound = new(Bind);

        private sealed record Binding(NormalizeFn Normalize, Dictionary<NormalizationForm, IntPtr> Instances);

        public static string? Normalize(string text, NormalizationForm form)
        {
            Binding? binding = Bound.Value;
            if (binding is null || !binding.Instances.TryGetValue(form, out IntPtr instance)) return null;
            IntPtr source = Marshal.StringToHGlobalUni(text);
            try
            {
                int capacity = text.Length * 3 + 16;
                while (true)
                {
                    IntPtr destination = Marshal.AllocHGlobal(capacity * sizeof(char));
                    try
                    {
                        int error = 0;
                        int length = binding.Normalize(instance, source, text.Length, destination, capacity, ref error);
                        if (error == BufferOverflowError) { capacity = length + 16; continue; }
                        if (error > 0) throw new DllmException($"ICU failed to normalise text to {form} (error {error})");
                        return Marshal.PtrToStringUni(destination, length);
                    }
                    finally { Marshal.FreeHGlobal(destination); }
                }
            }
            finally { Marshal.FreeHGlobal(source); }
        }

        private static Binding? Bind()
        {
            foreach ((string library, string suffix) in Candidates())
            {
                if (!NativeLibrary.TryLoad(library, out IntPtr handle)) continue;
                if (!NativeLibrary.TryGetExport(handle, "unorm2_normalize" + suffix, out IntPtr normalize)) continue;
                var instances = new Dictionary<NormalizationForm, IntPtr>();
                foreach ((NormalizationForm form, string name) in new[]
                {
                    (NormalizationForm.FormC, "unorm2_getNFCInstance"), (NormalizationForm.FormD, "unorm2_getNFDInstance"),
                    (NormalizationForm.FormKC, "unorm2_getNFKCInstance"), (NormalizationForm.FormKD, "unorm2_getNFKDInstance"),
                })
                {
                    if (!NativeLibrary.TryGetExport(handle, name + suffix, out IntPtr getter)) continue;
                    int error = 0;
                    IntPtr instance = Marshal.GetDelegateForFunctionPointer<GetInstanceFn>(getter)(ref error);
                    if (error <= 0 && instance != IntPtr.Zero) instances[form] = instance;
                }
                if (instances.Count > 0)
                    return new Binding(Marshal.GetDelegateForFunctionPointer<NormalizeFn>(normalize), instances);
            }
            return null;
        }

        private static IEnumerable<(string Library, string Suffix)> Candidates()
        {
            for (int major = 90; major >= 50; major--)
                yield return ($"libicuuc.so.{major}", $"_{major}");
            // Windows 10+ ships a combined icu.dll with unversioned exports; macOS has libicucore.
            yield return ("icu.dll", "");
            yield return ("libicucore.dylib", "");
        }
    }
}
