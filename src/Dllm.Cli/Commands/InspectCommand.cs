using System.CommandLine;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.IO;
using Dllm.Models;
using Dllm.Tokenization;
using Spectre.Console;

namespace Dllm.Cli.Commands;

internal static class InspectCommand
{
    public static Command Build()
    {
        var dir = new Argument<string>("DIR") { Description = "Model folder (Hugging Face format)" };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor with its dtype and shape" };
        var json = SharedOptions.Json();
        var command = new Command("inspect",
            "Describe a checkpoint: architecture, size, parameter count, dtypes, tensors, tokenizer and special tokens, " +
            "and whether it is an AR or a diffusion LM. It also runs every check loading does (config ranges, shapes against " +
            "config.json, floating-point dtypes, finite weights, tokenizer ids within the vocabulary) and exits 1 naming the " +
            "first problem, so a folder inspect accepts is one generate, serve and the trainers accept.")
        {
            dir, tensors, json,
        };
        command.SetAction(p =>
        {
            var report = Describe(p.GetValue(dir)!);
            if (p.GetValue(json)) Output.WriteJson(p, report.ToJson(p.GetValue(tensors)));
            else report.Render(Output.Out(p), p.GetValue(tensors));
            if (report.Problem is null) return 0;
            Output.Err(p).WriteLine($"error: {report.Problem}");
            return 1;
        });
        return command;
    }

    private sealed record TensorRow(string Name, string DType, long[] Shape, bool Used);

    private sealed record Report(ModelConfig Config, IReadOnlyList<TensorRow> Tensors, TextTokenizer? Tokenizer, string? TokenizerError, string Directory, string? Problem)
    {
        private long Parameters => Tensors.Where(t => t.Used).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

        private int? MaskId => Config.MaskTokenId ?? Tokenizer?.MaskId ?? Tokenizer?.TokenToId(MaskTokenSetup.DefaultMaskToken);

        private string Kind => Config.IsDiffusion
            ? $"block-diffusion LM (block size {Config.Diffusion?.BlockSize.ToString() ?? $"{DiffusionSettings.DefaultBlockSize} (LLaDA2 default)"})"
            : "autoregressive LM";

        private IEnumerable<(string Key, string Value)> Facts()
        {
            var c = Config;
            yield return ("architecture", $"{c.Architecture} ({c.ModelType})");
            yield return ("kind", Kind);
            yield return ("parameters", $"{Parameters:N0} ({Parameters / 1e6:F2} M)");
            yield return ("layers / hidden / ffn", $"{c.NumLayers} / {c.HiddenSize} / {c.IntermediateSize}");
            yield return ("attention heads (q / kv) x dim", $"{c.NumHeads} / {c.NumKvHeads} x {c.HeadDim}" + (c.QkNorm ? ", q/k norm" : "") + (c.QkvBias ? ", qkv bias" : ""));
            yield return ("rope", $"theta {c.RopeTheta:G}, rotary dims {c.RotaryDim}/{c.HeadDim}" + (c.RopeScaling is { } s ? $", scaling {s.Type} x{s.Factor:G}" : ""));
            if (c.Moe is { } m)
                yield return ("experts", $"{m.NumExperts} routed (top {m.NumExpertsPerToken} of {m.TopKGroups}/{m.NumGroups} groups, scale {m.RoutedScalingFactor:G}) + {m.NumSharedExperts ?? 0} shared, width {m.MoeIntermediateSize}, first {m.FirstKDenseReplace} layer(s) dense");
            yield return ("vocabulary / context", $"{c.VocabSize} / {c.MaxPositionEmbeddings}" + (c.TieWordEmbeddings ? ", tied embeddings" : ""));
            var dtypes = Tensors.GroupBy(t => t.DType).Select(g => $"{g.Key} x{g.Count()}");
            yield return ("tensors", $"{Tensors.Count} ({string.Join(", ", dtypes)})");
            if (Tokenizer is { } tok)
            {
                yield return ("tokenizer", $"{tok.VocabSize} tokens");
                yield return ("special tokens", string.Join(", ", new (string, int?)[] { ("bos", tok.BosId), ("eos", tok.EosId), ("pad", tok.PadId), ("unk", tok.UnkId) }
                    .Where(x => x.Item2 is not null).Select(x => $"{x.Item1} {tok.IdToToken(x.Item2!.Value)}={x.Item2}")));
                yield return ("stop tokens", string.Join(", ", tok.EosIds.Select(i => $"{tok.IdToToken(i)}={i}")));
            }
            else yield return ("tokenizer", TokenizerError ?? "none");
            yield return ("mask token", MaskId is { } id ? $"{Tokenizer?.IdToToken(id) ?? "?"}={id}" : "none (AR checkpoint: dllm convert adds one)");
            yield return ("check", Problem ?? "ok: loads as generate, serve and the trainers load it");
        }

        public void Render(TextWriter writer, bool listTensors)
        {
            var console = Output.ReportConsole(writer);
            var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(Directory)).HideHeaders().AddColumn("").AddColumn("");
            foreach (var (k, v) in Facts()) table.AddRow(new Text(k, new Style(decoration: Decoration.Bold)), new Text(v));
            console.Write(table);
            if (!listTensors) return;
            var t = new Table().Border(TableBorder.Simple).AddColumn("tensor").AddColumn("dtype").AddColumn("shape");
            foreach (var row in Tensors)
                t.AddRow(new Text(row.Name + (row.Used ? "" : "  (skipped)")), new Text(row.DType), new Text("[" + string.Join(", ", row.Shape) + "]"));
            console.Write(t);
        }

        public JsonObject ToJson(bool listTensors)
        {
            var o = new JsonObject
            {
                ["directory"] = Directory,
                ["architecture"] = Config.Architecture,
                ["model_type"] = Config.ModelType,
                ["diffusion"] = Config.IsDiffusion,
                ["block_size"] = Config.Diffusion?.BlockSize,
                ["parameters"] = Parameters,
                ["num_layers"] = Config.NumLayers,
                ["hidden_size"] = Config.HiddenSize,
                ["vocab_size"] = Config.VocabSize,
                ["context_length"] = Config.MaxPositionEmbeddings,
                ["num_experts"] = Config.Moe?.NumExperts,
                ["tensor_count"] = Tensors.Count,
                ["dtypes"] = new JsonObject(Tensors.GroupBy(t => t.DType).Select(g => KeyValuePair.Create(g.Key, (JsonNode?)g.Count()))),
                ["mask_token_id"] = MaskId,
                ["valid"] = Problem is null,
                ["problem"] = Problem,
            };
            if (Tokenizer is { } tok)
                o["tokenizer"] = new JsonObject
                {
                    ["vocab_size"] = tok.VocabSize,
                    ["bos_token_id"] = tok.BosId,
                    ["eos_token_id"] = tok.EosId,
                    ["pad_token_id"] = tok.PadId,
                    ["stop_token_ids"] = new JsonArray(tok.EosIds.Select(i => (JsonNode?)i).ToArray()),
                };
            else o["tokenizer_error"] = TokenizerError;
            if (listTensors)
                o["tensors"] = new JsonArray(Tensors.Select(t => (JsonNode?)new JsonObject
                {
                    ["name"] = t.Name,
                    ["dtype"] = t.DType,
                    ["shape"] = new JsonArray(t.Shape.Select(x => (JsonNode?)x).ToArray()),
                }).ToArray());
            return o;
        }
    }

    private static Report Describe(string directory)
    {
        var config = ModelConfigReader.ReadDirectory(directory);
        using var reader = CheckpointReader.Open(directory);
        var rows = reader.Names.Select(n =>
        {
            var e = reader.Entry(n);
            return new TensorRow(n, e.DType.ToString(), e.Shape, !CheckpointNames.IsIgnorable(n, config));
        }).ToList();
        TextTokenizer? tokenizer = null;
        string? error = null;
        try { tokenizer = TextTokenizer.Load(directory); }
        catch (DllmException e) { error = e.Message; }
        // The checks loading runs, so inspect never passes a folder that generate refuses.
        string? problem = error;
        if (tokenizer is not null)
        {
            try { ModelFolderCheck.Run(config, reader, tokenizer); }
            catch (DllmException e) { problem = e.Message; }
        }
        return new Report(config, rows, tokenizer, error, Path.GetFullPath(directory), problem);
    }
}
