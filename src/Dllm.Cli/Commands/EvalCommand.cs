using System.CommandLine;
using Dllm.Config;
using System.Text.Json.Nodes;
using Dllm.Data;
using Dllm.Evaluation;
using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Cli.Commands;

internal static class EvalCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model();
        var data = new Option<string?>("--data") { Description = "Documents to score: .txt (one per line, or between '<|endoftext|>' lines), .jsonl ('text') or .parquet" };
        var task = new Option<string?>("--task") { Description = "Tasks to solve instead: JSONL prompt/answer (optional kind), or GSM8K question/answer ('#### N'); reports accuracy (overall and per kind), tokens_per_forward, tokens_per_forward_ceiling (the most the outputs allow: one forward per block an answer touches) and tokens_per_second" };
        var mode = new Option<DecodeMode>("--mode") { Description = "diffusion: NELBO bound / block decoding; ar: exact next-token NLL / AR decoding; auto: diffusion for dLLMs, else ar", DefaultValueFactory = _ => DecodeMode.Auto };
        var compareAr = new Option<string?>("--compare-ar") { Description = "Tasks: also run this AR model (the dLLM's parent) on the same tasks in the same process, in interleaved passes, and report both with the speed ratio" };
        var passes = new Option<int>("--passes") { Description = "Tasks with --compare-ar: interleaved passes over the tasks; tokens/s are the medians", DefaultValueFactory = _ => 3 };
        var threshold = SharedOptions.Threshold();
        var maxSteps = SharedOptions.MaxStepsPerBlock();
        var stopFill = SharedOptions.StopFill();
        var credit = SharedOptions.Credit();
        var editingThreshold = SharedOptions.EditingThreshold();
        var maxPostSteps = SharedOptions.MaxPostSteps();
        var maxNew = new Option<int>("--max-new-tokens", "-n") { Description = "Tasks: longest answer", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature", "-t") { Description = "Tasks: sampling temperature (0 = greedy)", DefaultValueFactory = _ => 0.0 };
        var batch = new Option<int>("--batch") { Description = "Tasks: prompts decoded together", DefaultValueFactory = _ => 8 };
        var mistakes = new Option<int>("--mistakes") { Description = "Tasks: list up to this many wrong answers (kind, prompt, expected answer, output), to see what a model gets wrong", DefaultValueFactory = _ => 0 };
        var template = new Option<string?>("--template") { Description = "Tasks: wrap each prompt as a user turn with this chat template (default: prompts verbatim)" };
        var block = new Option<int?>("--block-size") { Description = $"Block size for the NELBO (default: the model's, or {Dllm.Config.DiffusionSettings.DefaultBlockSize})" };
        var samples = new Option<int>("--samples") { Description = "Monte-Carlo draws of mask rates and masks per document", DefaultValueFactory = _ => 4 };
        var seed = new Option<long>("--seed") { Description = "Seed of the draws (fixed seeds compare checkpoints on the same masks)", DefaultValueFactory = _ => 0 };
        var maxDocs = new Option<int>("--max-docs") { Description = "Score at most this many documents (0 = all)", DefaultValueFactory = _ => 0 };
        var maxLen = new Option<int>("--max-length") { Description = "Truncate documents to this many tokens (default: the model's context)", DefaultValueFactory = _ => 0 };
        var threads = SharedOptions.Threads();
        var device = SharedOptions.Device();
        var dtype = SharedOptions.DType();
        var json = SharedOptions.Json();
        var command = new Command("eval",
            "Score held-out text. Diffusion mode reports the negative ELBO per token (nelbo_per_token) and its perplexity " +
            "bound ppl = exp(nelbo): each document on its own, unpacked, with S fixed-seed draws. --mode ar reports the exact " +
            "AR NLL per token (nll_per_token, ppl); the first token of each document is context only. With --task it decodes " +
            "every prompt and scores the answers (exact match; numbers by value: the '#### N' or the last number). Tokens per " +
            "forward counts decoded tokens, the stop token included, over decoding forwards (the prompt prefill is not one; " +
            "AR is exactly 1); tokens per second counts the same tokens over wall time.")
        {
            model, data, task, mode, block, samples, seed, maxDocs, maxLen, threshold, maxSteps, stopFill, credit, editingThreshold, maxPostSteps, maxNew, temperature, batch, template, mistakes, compareAr, passes, threads, device, dtype, json,
        };
        command.SetAction(p =>
        {
            // Option ranges first: a zero batch used to spin forever, a zero block divided by zero.
            if (p.GetValue(block) is < 1 and var badBlock) throw new DllmException($"--block-size must be positive, got {badBlock}");
            if (p.GetValue(batch) < 1) throw new DllmException($"--batch must be positive, got {p.GetValue(batch)}");
            if (p.GetValue(samples) < 1) throw new DllmException($"--samples must be positive, got {p.GetValue(samples)}");
            if (p.GetValue(maxDocs) < 0) throw new DllmException($"--max-docs must be 0 (all) or positive, got {p.GetValue(maxDocs)}");
            if (p.GetValue(maxLen) < 0) throw new DllmException($"--max-length must be 0 (the model's context) or positive, got {p.GetValue(maxLen)}");
            if (p.GetValue(mistakes) < 0) throw new DllmException($"--mistakes must be 0 (none) or positive, got {p.GetValue(mistakes)}");
            if (p.GetValue(maxNew) < 1) throw new DllmException($"--max-new-tokens must be positive, got {p.GetValue(maxNew)}");
            new SamplingOptions(p.GetValue(temperature)).Validate();
            new BlockDecodeOptions(p.GetValue(block) ?? 1, p.GetValue(threshold), p.GetValue(maxSteps)).Validate();
            SharedOptions.ApplyThreads(p, threads);
            using var loaded = LoadedModel.Load(p.GetValue(model)!, SharedOptions.LoadOptions(p, device, dtype));
            if (p.GetValue(task) is { } taskFile)
            {
                var decodeMode = p.GetValue(mode);
                var items = TaskFile.Read(taskFile);
                if (p.GetValue(maxDocs) > 0) items = items.Take(p.GetValue(maxDocs)).ToList();
                if (p.GetValue(template) is { } name)
                {
                    var chat = Dllm.Chat.ChatTemplate.ByName(name);
                    items = items.Select(i => i with { Prompt = chat.Render([Dllm.Chat.ChatMessage.User(i.Prompt)]) }).ToList();
                }
                var request = new GenerationRequest
                {
                    Prompt = "",
                    Mode = decodeMode,
                    AddSpecialTokens = p.GetValue(template) is null,
                    Options = new DecodeOptions { MaxNewTokens = p.GetValue(maxNew), Sampling = new SamplingOptions(p.GetValue(temperature), Seed: p.GetValue(seed)) },
                    Block = new BlockDecodeOptions(p.GetValue(block) ?? loaded.DefaultBlockSize, p.GetValue(threshold), p.GetValue(maxSteps),
                        StopFill: p.GetValue(stopFill), Credit: p.GetValue(credit) ? new CreditOptions() : null,
                        Editing: SharedOptions.Editing(p, editingThreshold, maxPostSteps)),
                };
                JsonObject taskReport;
                if (p.GetValue(compareAr) is { } arDir)
                {
                    using var arModel = LoadedModel.Load(arDir, SharedOptions.LoadOptions(p, device, dtype));
                    if (!loaded.IsDiffusion) throw new DllmException($"{p.GetValue(model)} is not a diffusion LM: --compare-ar compares a dLLM with its AR parent");
                    var c = TaskEvaluator.Compare(loaded, arModel, items, request, p.GetValue(batch), p.GetValue(passes));
                    taskReport = new JsonObject
                    {
                        ["diffusion"] = TaskJson(c.Diffusion, "diffusion", c.DiffusionTokensPerSecond, p.GetValue(mistakes)),
                        ["ar"] = TaskJson(c.Ar, "ar", c.ArTokensPerSecond, p.GetValue(mistakes)),
                        ["speed_ratio"] = Math.Round(c.SpeedRatio, 3),
                        ["accuracy_gap"] = Math.Round(c.AccuracyGap, 4),
                        ["passes"] = c.Passes,
                        ["batch"] = p.GetValue(batch),
                    };
                }
                else
                {
                    var r = TaskEvaluator.Evaluate(loaded, items, request, p.GetValue(batch));
                    taskReport = TaskJson(r, TextGeneration.ResolveMode(loaded, decodeMode).ToString().ToLowerInvariant(), r.TokensPerSecond, p.GetValue(mistakes));
                }
                if (p.GetValue(json)) Output.WriteJson(p, taskReport);
                else Print(Output.Out(p), taskReport, "");
                return 0;
            }
            if (p.GetValue(data) is null) throw new DllmException("give --data FILE (perplexity / NELBO) or --task FILE.jsonl (accuracy)");
            var ar = p.GetValue(mode) switch
            {
                DecodeMode.Ar => true,
                DecodeMode.Diffusion => false,
                _ => !loaded.IsDiffusion,
            };
            var length = p.GetValue(maxLen) is > 0 and var m ? m : loaded.Model.Config.MaxPositionEmbeddings;
            var docs = CorpusReader.ReadDocuments([p.GetValue(data)!]);
            if (p.GetValue(maxDocs) > 0) docs = docs.Take(p.GetValue(maxDocs));
            var scored = docs.Select(d => ScoredDocument.FromText(loaded.Tokenizer, d, length)).ToList();
            if (scored.Count == 0) throw new DllmException($"{p.GetValue(data)} holds no documents");
            JsonObject report;
            if (ar)
            {
                var r = ArNllEvaluator.Evaluate(loaded.Model, scored);
                report = new JsonObject { ["mode"] = "ar", ["nll_per_token"] = r.PerToken, ["ppl"] = r.Perplexity, ["tokens"] = r.Tokens, ["documents"] = r.Documents };
            }
            else
            {
                var maskId = loaded.MaskTokenId ?? throw new DllmException("this checkpoint has no MASK token, so it has no diffusion NELBO; use --mode ar or convert it first");
                var b = p.GetValue(block) ?? loaded.DefaultBlockSize;
                var r = NelboEvaluator.Evaluate(loaded.Model, scored, b, maskId, loaded.Labels, p.GetValue(samples), p.GetValue(seed));
                report = new JsonObject
                {
                    ["mode"] = "diffusion", ["nelbo_per_token"] = r.PerToken, ["ppl"] = r.Perplexity, ["block_size"] = b, ["labels"] = loaded.Labels.Name(),
                    ["samples"] = r.Samples, ["seed"] = p.GetValue(seed), ["tokens"] = r.Tokens, ["documents"] = r.Documents,
                };
            }
            if (p.GetValue(json)) Output.WriteJson(p, report);
            else foreach (var (k, v) in report) Output.Out(p).WriteLine($"{k,-16} {v}");
            return 0;
        });
        return command;
    }

    private static JsonObject TaskJson(TaskReport r, string mode, double tokensPerSecond, int mistakes)
    {
        var report = new JsonObject
        {
            ["mode"] = mode,
            ["accuracy"] = r.Accuracy, ["correct"] = r.Correct, ["items"] = r.Items,
            ["kinds"] = new JsonObject(r.ByKind.Select(k => KeyValuePair.Create(k.Kind == "" ? "all" : k.Kind,
                (JsonNode?)new JsonObject { ["items"] = k.Items, ["accuracy"] = Math.Round(k.Accuracy, 4), ["tokens_per_forward"] = Math.Round(k.TokensPerForward, 3) }))),
            ["tokens_per_forward"] = Math.Round(r.TokensPerForward, 4),
            ["tokens_per_forward_ceiling"] = Math.Round(r.TokensPerForwardCeiling, 4),
            ["tokens_per_second"] = Math.Round(tokensPerSecond, 2),
            ["tokens"] = r.Tokens, ["forwards"] = r.Forwards,
        };
        if (mistakes > 0)
            report["mistakes"] = new JsonArray(r.Details.Where(d => !d.Correct).Take(mistakes).Select(d => (JsonNode?)new JsonObject
            {
                ["kind"] = d.Item.Kind, ["prompt"] = d.Item.Prompt, ["expected"] = d.Item.Answer, ["output"] = d.Output,
            }).ToArray());
        return report;
    }

    private static void Print(TextWriter o, JsonObject report, string indent)
    {
        foreach (var (k, v) in report)
        {
            if (v is JsonObject inner)
            {
                o.WriteLine($"{indent}{k}:");
                Print(o, inner, indent + "  ");
            }
            else if (v is JsonArray list)
            {
                o.WriteLine($"{indent}{k}: {list.Count}");
                foreach (var item in list.OfType<JsonObject>())
                    o.WriteLine($"{indent}  - " + string.Join("\n" + indent + "    ", item.Select(f => $"{f.Key}: {f.Value}")));
            }
            else o.WriteLine($"{indent}{k,-20} {v}");
        }
    }
}
