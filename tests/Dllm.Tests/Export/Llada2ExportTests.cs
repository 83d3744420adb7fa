using System.Text.Json.Nodes;
using Dllm.Attention;
using Dllm.Config;
using Dllm.Export;
using Dllm.Generation;
using Dllm.IO;
using Dllm.Models;
using Dllm.Models.Layers;
using Dllm.Runtime;
using Dllm.Tests.Cli;
using static TorchSharp.torch;

namespace Dllm.Tests.Export;

public class Llada2ExportTests
{
    public Llada2ExportTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Dense => new("llama", "qwen2", "qwen3");

    /// <summary>A tiny dense dLLM folder as 'dllm convert' leaves it: MASK token added, "dllm" section recorded.</summary>
    internal static string WriteDllm(TempDirectory dir, string arch, ScalarType? dtype = null, Action<JsonObject>? edit = null, long seed = 7)
    {
        var json = TinyConfigs.Json(arch);
        edit?.Invoke(json);
        var model = ModelFactory.Create(ModelConfigReader.Read(json.ToJsonString()), Placement.Cpu32);
        ModelInit.Randomize(model, seed, std: 0.2);
        using (no_grad()) model.OutputWeight.mul_(4);   // peaky enough that thresholds matter in decoding
        var (converted, tokenizer) = MaskTokenSetup.Ensure(model, TinyCheckpoints.Tokenizer());
        using (converted)
        {
            var path = dir.File($"{arch}-dlm");
            ModelSaver.Save(converted.Config with { Diffusion = new DiffusionSettings(4) }, converted.state_dict(), tokenizer, path, dtype ?? ScalarType.Float32);
            return path;
        }
    }

    [Theory]
    [MemberData(nameof(Dense))]
    public void TheExportReadsBackAsLlada2WithTheSourcesLogitsAndTokens(string arch)
    {
        using var dir = new TempDirectory();
        var source = WriteDllm(dir, arch);
        var report = Llada2Exporter.Export(source, dir.File("out"));

        using var a = LoadedModel.Load(source);
        using var b = LoadedModel.Load(dir.File("out"));
        Assert.Equal(ModelConfigReader.LLaDA2Architecture, b.Model.Config.Architecture);
        Assert.Equal(ModelFamily.BailingMoe, b.Model.Config.Family);
        var mlps = b.Model.named_modules().Where(m => m.name.EndsWith(".mlp", StringComparison.Ordinal)).ToList();
        Assert.Equal(b.Model.Config.NumLayers, mlps.Count);
        Assert.All(mlps, m => Assert.IsType<SwiGlu>(m.module));
        Assert.Equal(a.MaskTokenId, b.MaskTokenId);
        Assert.Equal(report.MaskTokenId, b.MaskTokenId);
        Assert.Equal(a.StopTokenIds, b.StopTokenIds);
        Assert.True(b.IsDiffusion);

        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var tokens = tensor(new long[] { 3, 9, 27, 81, 243, 5, 200, 17 }).unsqueeze(0);
            var pos = arange(8);
            foreach (var mask in new[] { AttentionMasks.Causal(8, 0, CPU), AttentionMasks.BlockCausal(pos, pos, 4) })
            {
                var diff = (a.Model.Forward(tokens, mask: mask) - b.Model.Forward(tokens, mask: mask)).abs().max().item<float>();
                Assert.True(diff < 1e-5, $"{arch}: logits differ by {diff}");
            }
        }

        int[][] prompts = [[5, 6, 7], [40, 41, 42, 43, 44, 45]];
        foreach (var threshold in new[] { 0.9, 0.3 })
        {
            var block = new BlockDecodeOptions(4, threshold, 4);
            var options = new DecodeOptions { MaxNewTokens = 12, StopTokenIds = a.StopTokenIds };
            var x = DecodeCollector.Collect(BlockDecoder.Run(a.Model, prompts, options, block, a.MaskTokenId!.Value), prompts.Length);
            var y = DecodeCollector.Collect(BlockDecoder.Run(b.Model, prompts, options, block, b.MaskTokenId!.Value), prompts.Length);
            for (var i = 0; i < prompts.Length; i++) Assert.Equal(x[i].Tokens, y[i].Tokens);
        }
    }

    [Theory]
    [MemberData(nameof(Dense))]
    public void ConfigStatesEveryFieldTheOfficialDefaultWouldGetWrong(string arch)
    {
        using var dir = new TempDirectory();
        var source = WriteDllm(dir, arch);
        Llada2Exporter.Export(source, dir.File("out"));
        var src = ModelConfigReader.ReadDirectory(source);
        var o = JsonNode.Parse(File.ReadAllText(dir.File("out/config.json")))!.AsObject();

        Assert.Equal("llada2_moe", o["model_type"]!.GetValue<string>());
        Assert.Equal("LLaDA2MoeModelLM", o["architectures"]![0]!.GetValue<string>());
        Assert.Equal(src.NumLayers, o["first_k_dense_replace"]!.GetValue<int>());
        Assert.Equal(src.NumLayers, o["num_hidden_layers"]!.GetValue<int>());
        Assert.Equal(1.0, o["partial_rotary_factor"]!.GetValue<double>());
        Assert.Equal(src.HeadDim, o["head_dim"]!.GetValue<int>());
        Assert.False(o["use_bias"]!.GetValue<bool>());
        Assert.Equal(src.QkvBias, o["use_qkv_bias"]!.GetValue<bool>());
        Assert.Equal(src.QkNorm, o["use_qk_norm"]!.GetValue<bool>());
        Assert.Equal(src.TieWordEmbeddings, o["tie_word_embeddings"]!.GetValue<bool>());
        Assert.Equal(src.RmsNormEps, o["rms_norm_eps"]!.GetValue<double>());
        Assert.Equal(src.RopeTheta, o["rope_theta"]!.GetValue<double>());
        Assert.Equal(src.RopeScaling is null, o["rope_scaling"] is null);
        Assert.Equal(src.MaskTokenId, o["mask_token_id"]!.GetValue<int>());
        var pad = o["pad_token_id"]!.GetValue<int>();
        Assert.InRange(pad, 0, src.VocabSize - 1);
        Assert.Equal("float32", o["torch_dtype"]!.GetValue<string>());
        // Every field of the official LLaDA2MoeConfig is stated, so none of its defaults applies.
        foreach (var field in new[] { "vocab_size", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "hidden_act",
                     "norm_head", "embedding_dropout", "attention_dropout", "output_dropout", "initializer_range", "max_position_embeddings",
                     "use_cache", "use_sliding_window", "sliding_window", "max_window_layers", "num_experts", "num_shared_experts",
                     "num_experts_per_tok", "n_group", "topk_group", "routed_scaling_factor", "moe_intermediate_size", "output_router_logits" })
            Assert.True(o.ContainsKey(field), $"config.json lacks {field}");

        var tc = JsonNode.Parse(File.ReadAllText(dir.File("out/tokenizer_config.json")))!.AsObject();
        Assert.Equal("<|mask|>", tc["mask_token"]!.GetValue<string>());
        Assert.Equal("<|endoftext|>", tc["eos_token"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(Dense))]
    public void TensorsAreRenamedAndQkvFusedInQKVHeadOrderBitForBitInTheSourceDType(string arch)
    {
        using var dir = new TempDirectory();
        var source = WriteDllm(dir, arch, ScalarType.BFloat16);
        Llada2Exporter.Export(source, dir.File("out"));
        var c = ModelConfigReader.ReadDirectory(source);
        using var from = CheckpointReader.Open(source);
        using var to = CheckpointReader.Open(dir.File("out"));
        Assert.All(to.Names, n => Assert.Equal(SafetensorsDType.BF16, to.Entry(n).DType));
        Assert.Equal("bfloat16", JsonNode.Parse(File.ReadAllText(dir.File("out/config.json")))!["torch_dtype"]!.GetValue<string>());
        using var scope = NewDisposeScope();
        bool Same(string a, string b) => from.Load(a).eq(to.Load(b)).all().item<bool>();
        Assert.True(Same("model.embed_tokens.weight", "model.word_embeddings.weight"));
        Assert.Equal(!c.TieWordEmbeddings, to.Contains("lm_head.weight"));
        long q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim;
        for (var i = 0; i < c.NumLayers; i++)
        {
            var p = $"model.layers.{i}.";
            var fused = to.Load(p + "attention.query_key_value.weight");
            Assert.Equal([q + 2 * kv, (long)c.HiddenSize], fused.shape);
            Assert.True(fused.narrow(0, 0, q).eq(from.Load(p + "self_attn.q_proj.weight")).all().item<bool>());
            Assert.True(fused.narrow(0, q, kv).eq(from.Load(p + "self_attn.k_proj.weight")).all().item<bool>());
            Assert.True(fused.narrow(0, q + kv, kv).eq(from.Load(p + "self_attn.v_proj.weight")).all().item<bool>());
            Assert.Equal(c.QkvBias, to.Contains(p + "attention.query_key_value.bias"));
            Assert.Equal(c.QkNorm, to.Contains(p + "attention.query_layernorm.weight"));
            Assert.True(Same(p + "self_attn.o_proj.weight", p + "attention.dense.weight"));
            Assert.False(to.Contains(p + "attention.dense.bias"));
            Assert.True(Same(p + "mlp.down_proj.weight", p + "mlp.down_proj.weight"));
        }
    }

    [Fact]
    public void WhatTheFormatCannotExpressIsRefusedWithTheReason()
    {
        using var dir = new TempDirectory();
        var shifted = WriteDllm(dir, "qwen3");
        var configPath = Path.Combine(shifted, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json["dllm"]!["labels"] = "shift";
        File.WriteAllText(configPath, json.ToJsonString());
        Assert.Contains("shift", Assert.Throws<DllmException>(() => Llada2Exporter.Export(shifted, dir.File("a"))).Message);
        Assert.False(Directory.Exists(dir.File("a")));

        var biased = WriteDllm(dir, "llama", edit: j => j["attention_bias"] = true);
        Assert.Contains("bias on the attention output", Assert.Throws<DllmException>(() => Llada2Exporter.Export(biased, dir.File("b"))).Message);

        var ar = TinyCheckpoints.Write("qwen2", dir.File("ar"));
        Assert.Contains("dllm convert", Assert.Throws<DllmException>(() => Llada2Exporter.Export(ar, dir.File("c"))).Message);

        var llada = TinyCheckpoints.Write("llada2", dir.File("llada"));
        Assert.Contains("already", Assert.Throws<DllmException>(() => Llada2Exporter.Export(llada, dir.File("d"))).Message);
    }

    [Fact]
    public void TheCliVerbExportsAndExplainsItsErrors()
    {
        using var dir = new TempDirectory();
        var source = WriteDllm(dir, "qwen2");
        var ok = CliRunner.InProcess("export", source, "--format", "llada2", "--out", dir.File("out"));
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("LLaDA2MoeModelLM", ok.Stdout);
        Assert.Contains("use_qk_norm=false", ok.Stderr);   // Qwen2 has no q/k norm: the note says who honours that
        Assert.True(File.Exists(dir.File("out/model.safetensors")));

        var help = CliRunner.InProcess("export", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("first_k_dense_replace", help.Stdout);
        Assert.Contains("--format", help.Stdout);

        var badFormat = CliRunner.InProcess("export", source, "--format", "gguf", "--out", dir.File("x"));
        Assert.Equal(2, badFormat.ExitCode);
        Assert.Contains("gguf", badFormat.Stderr);
        var noOut = CliRunner.InProcess("export", source, "--format", "llada2");
        Assert.Equal(2, noOut.ExitCode);
        Assert.Contains("--out", noOut.Stderr);
        var missing = CliRunner.InProcess("export", dir.File("nope"), "--format", "llada2", "--out", dir.File("y"));
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("error: model folder not found", missing.Stderr);
        Assert.Single(missing.Stderr.Trim().Split('\n'));
    }
}
