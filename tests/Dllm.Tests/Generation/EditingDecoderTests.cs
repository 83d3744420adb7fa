using Dllm.Generation;
using Dllm.Models;
using Dllm.Runtime;
using static TorchSharp.torch;

namespace Dllm.Tests.Generation;

/// <summary>LLaDA2.1 token editing in the block decoder, against a transcription of the official generate.</summary>
public class EditingDecoderTests
{
    private const int Mask = 271;
    private const int Eos = 263;

    public EditingDecoderTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Random weights scaled so confidences spread over (0, 1]: thresholds and edits both happen.</summary>
    private static CausalLM Peaky(string arch = "llada2", long seed = 3, double scale = 8)
    {
        var model = TinyConfigs.Model(arch, seed);
        using var noGrad = no_grad();
        model.OutputWeight.mul_(scale);
        return model;
    }

    private static List<DecodeStep> Steps(CausalLM model, int[][] prompts, BlockDecodeOptions block, int maxNew = 13) =>
        BlockDecoder.Run(model, prompts, new DecodeOptions { MaxNewTokens = maxNew, StopTokenIds = [Eos] }, block, Mask).ToList();

    private static IReadOnlyList<DecodedSequence> Decode(CausalLM model, int[][] prompts, BlockDecodeOptions block, int maxNew = 13) =>
        DecodeCollector.Collect(Steps(model, prompts, block, maxNew), prompts.Length);

    private static readonly int[][] Prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16], [20], [30, 31, 32, 33, 34]];

    [Theory]
    [InlineData(4, 0.9, 0.5, 16)]
    [InlineData(4, 0.5, 0.3, 3)]
    [InlineData(8, 0.7, 0.5, 16)]
    [InlineData(8, 0.3, 0.0, 2)]
    [InlineData(3, 0.95, 0.9, 1)]
    [InlineData(4, 0.6, 0.4, 0)]
    public void CachedAndUncachedEditingMatchTheOfficialGenerate(int b, double threshold, double editingThreshold, int maxPostSteps)
    {
        using var model = Peaky();
        foreach (var prompt in Prompts)
        {
            var expected = Llada21Reference.Generate(model, prompt, Mask, b, threshold, editingThreshold, maxPostSteps, 13, Eos, out _);
            var editing = new EditingOptions(editingThreshold, maxPostSteps);
            // Steps >= B: the reference unmasks at least one MASK per forward and never reads its step count.
            var cached = Decode(model, [prompt], new BlockDecodeOptions(b, threshold, b, Editing: editing))[0].Tokens;
            var uncached = Decode(model, [prompt], new BlockDecodeOptions(b, threshold, b, UseCache: false, Editing: editing))[0].Tokens;
            Assert.Equal(expected, cached);
            Assert.Equal(expected, uncached);
        }
    }

    [Fact]
    public void EditingChangesTokensAndTheForwardCountFollowsTheReference()
    {
        using var model = Peaky();
        var changed = 0;
        foreach (var prompt in Prompts)
        {
            var plain = Llada21Reference.Generate(model, prompt, Mask, 4, 0.5, 1.0, 0, 13, Eos, out _, eosEarlyStop: false);
            var edited = Llada21Reference.Generate(model, prompt, Mask, 4, 0.5, 0.2, 8, 13, Eos, out var referenceForwards, eosEarlyStop: false);
            if (!plain.SequenceEqual(edited)) changed++;
            Assert.Equal(edited, Decode(model, [prompt], new BlockDecodeOptions(4, 0.5, 4, Editing: new EditingOptions(0.2, 8)))[0].Tokens);
        }
        Assert.True(changed > 0, "a low editing threshold should change some output of this model, or the test proves nothing");

        // Forwards: a block whose prompt tail and limit line up with the reference's canvas costs the same forwards.
        int[] aligned = [5, 6, 7, 8];
        Llada21Reference.Generate(model, aligned, Mask, 4, 0.5, 0.2, 8, 8, eos: -1, out var forwards, eosEarlyStop: false);
        var run = BlockDecoder.Run(model, [aligned], new DecodeOptions { MaxNewTokens = 8 }, new BlockDecodeOptions(4, 0.5, 4, Editing: new EditingOptions(0.2, 8)), Mask).ToList();
        Assert.Equal(forwards, run.Max(s => s.Forward));
    }

    [Theory]
    [InlineData(4, 0.9, true)]
    [InlineData(8, 0.4, true)]
    [InlineData(4, 0.0, false)]
    [InlineData(1, 0.9, false)]
    public void NeverEditingAndNoPostStepsReproducesThePlainDecoder(int b, double threshold, bool cached)
    {
        using var model = Peaky(seed: 5);
        foreach (var steps in new[] { b, 2 })
        {
            var plain = Decode(model, Prompts, new BlockDecodeOptions(b, threshold, steps, cached));
            var editing = Decode(model, Prompts, new BlockDecodeOptions(b, threshold, steps, cached, Editing: new EditingOptions(1.0, 0)));
            for (var i = 0; i < Prompts.Length; i++)
            {
                Assert.Equal(plain[i].Tokens, editing[i].Tokens);
                Assert.Equal(plain[i].Finish, editing[i].Finish);
            }
        }
    }

    /// <summary>
    /// A shifted-label model predicts slot s from position s - 1, which sees a decided token at s: editing would ask it
    /// for something it was never trained on (the demo's SFT+CAP went from 97% to 0%, each edit copying the previous
    /// word). Refused with one clear error, cached or not, in the library and at the server's admission.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EditingIsRefusedForAShiftedLabelModel(bool cached)
    {
        using var model = TinyConfigs.Shifted("qwen3");
        Assert.Equal(Prompts.Length, Decode(model, Prompts, new BlockDecodeOptions(4, 0.5, 4, cached)).Count);
        var error = Assert.Throws<DllmException>(() =>
            Decode(model, Prompts, new BlockDecodeOptions(4, 0.5, 4, cached, Editing: new EditingOptions(0.9, 4))));
        Assert.Contains("same-position labels", error.Message);

        using var loaded = new LoadedModel(TinyConfigs.Shifted("llama"), TinyCheckpoints.Tokenizer());
        loaded.EnsureMaskToken();
        var request = new GenerationRequest
        {
            Prompt = "hello", Mode = DecodeMode.Diffusion, Options = new DecodeOptions { MaxNewTokens = 4 },
            Block = new BlockDecodeOptions(4, UseCache: cached, Editing: new EditingOptions(0.9, 4)),
        };
        Assert.Contains("same-position labels", Assert.Throws<DllmException>(() => Dllm.Serving.Scheduling.AdmittedRequest.Admit(loaded, request)).Message);
        Assert.Equal(4, Dllm.Serving.Scheduling.AdmittedRequest.Admit(loaded, request with { Block = new BlockDecodeOptions(4, UseCache: cached) }).MaxNewTokens);
    }

    [Fact]
    public void ABatchWithEditingEqualsEachPromptAlone()
    {
        using var model = Peaky("qwen3");
        var block = new BlockDecodeOptions(4, 0.5, 4, Editing: new EditingOptions(0.3, 4));
        var batch = Decode(model, Prompts, block, 14);
        for (var i = 0; i < Prompts.Length; i++)
            Assert.Equal(Decode(model, [Prompts[i]], block, 14)[0].Tokens, batch[i].Tokens);
    }

    [Fact]
    public void UpdatesStayProvisionalUntilTheBlockEndsAndStreamedTextIsTheFinalText()
    {
        using var dir = new TempDirectory();
        using var loaded = LoadedModel.Load(TinyCheckpoints.Write("llada2", dir.File("m"), seed: 4));
        loaded.EnsureMaskToken();
        using (no_grad()) loaded.Model.OutputWeight.mul_(8);
        var block = new BlockDecodeOptions(4, 0.5, 4, Editing: new EditingOptions(0.2, 6));
        var steps = BlockDecoder.Run(loaded.Model, [[5, 6, 7]], new DecodeOptions { MaxNewTokens = 12 }, block, loaded.MaskTokenId!.Value).ToList();
        var finals = steps.SelectMany(s => s.Updates).Where(u => u is { Provisional: false, Positions.Length: > 0 }).ToList();
        Assert.Contains(steps.SelectMany(s => s.Updates), u => u.Provisional);
        // Each finished block restates every one of its slots once, as final.
        Assert.Equal(Enumerable.Range(0, finals.Sum(u => u.Positions.Length)), finals.SelectMany(u => u.Positions).Order());

        var request = new GenerationRequest { Prompt = "hello", Block = block, Options = new DecodeOptions { MaxNewTokens = 12 } };
        var streamed = "";
        GenerationResult? result = null;
        foreach (var e in TextGeneration.Stream(loaded, [request]))
        {
            streamed += e.Delta;
            result ??= e.Result;
        }
        Assert.NotNull(result);
        Assert.Equal(result!.Text, streamed);
    }

    [Fact]
    public void BadEditingSettingsAreClearErrors()
    {
        using var model = Peaky();
        Assert.Contains("editing threshold", Assert.Throws<DllmException>(() => Decode(model, [[5]], new BlockDecodeOptions(4, Editing: new EditingOptions(1.5)))).Message);
        Assert.Contains("post steps", Assert.Throws<DllmException>(() => Decode(model, [[5]], new BlockDecodeOptions(4, Editing: new EditingOptions(0.5, -1)))).Message);
    }
}
