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
        var task = new Option<string?>("--task") { Description = "Tasks to solve instead: JSONL prompt/answer, or GSM8K question/answer ('#### N'); reports accuracy, tokens_per_forward, tokens_per_second, items" };
        var mode = new Option<string>("--mode") { Description = "diffusion: NELBO bound / block decoding (default for dLLMs); ar: exact next-token NLL / AR decoding", DefaultValueFactory = _ => "auto" };
        var threshold = SharedOptions.Threshold();
        var maxSteps = SharedOptions.MaxStepsPerBlock();
        var maxNew = new Option<int>("--max-new-tokens", "-n") { Description = "Tasks: longest answer", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature", "-t") { Description = "Tasks: sampling temperature (0 = greedy)", DefaultValueFactory = _ => 0.0 };
        var batch = new Option<int>("--batch") { Description = "Tasks: prompts decoded together", DefaultValueFactory = _ => 8 };
        var template = new Option<string?>("--template") { Description = "Tasks: wrap each prompt as a user turn with this chat template (default: prompts verbatim)" };
        var block = new Option<int?>("--block-size") { Description = "Block size for the NELBO (default: the model's, or 32)" };
        var samples = new Option<int>("--samples") { Description = "Monte-Carlo draws of mask rates and masks per document", DefaultValueFactory = _ => 4 };
        var seed = new Option<long>("--seed") { Description = "Seed of the draws (fixed seeds compare checkpoints on the same masks)", DefaultValueFactory = _ => 0 };
        var maxDocs = new Option<int>("--max-docs") { Description = "Score at most this many documents (0 = all)", DefaultValueFactory = _ => 0 };
        var maxLen = new Option<int>("--max-length") { Description = "Truncate documents to this many tokens (default: the model's context)", DefaultValueFactory = _ => 0 };
        var device = SharedOptions.Device();
        var dtype = SharedOptions.DType();
        var json = SharedOptions.Json();
        var command = new Command("eval",
            "Score held-out text. Diffusion mode reports the negative ELBO per token (nelbo_per_token) and its perplexity " +
            "bound ppl = exp(nelbo): each document on its own, unpacked, with S fixed-seed draws. --mode ar reports the exact " +
            "AR NLL per token (nll_per_token, ppl); the first token of each document is context only. With --task it decodes " +
            "every prompt and scores the answers (exact match; numbers by value: the '#### N' or the last number).")
        {
            model, data, task, mode, block, samples, seed, maxDocs, maxLen, threshold, maxSteps, maxNew, temperature, batch, template, device, dtype, json,
        };
        command.SetAction(p =>
        {
            using var loaded = LoadedModel.Load(p.GetValue(model)!, SharedOptions.LoadOptions(p, device, dtype));
            if (p.GetValue(task) is { } taskFile)
            {
                var decodeMode = p.GetValue(mode) switch
                {
                    "ar" => DecodeMode.Ar,
                    "diffusion" => DecodeMode.Diffusion,
                    "auto" => DecodeMode.Auto,
                    var other => throw new DllmException($"unknown mode '{other}': use ar or diffusion"),
                };
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
                    Block = new BlockDecodeOptions(p.GetValue(block) ?? loaded.DefaultBlockSize, p.GetValue(threshold), p.GetValue(maxSteps)),
                };
                var r = TaskEvaluator.Evaluate(loaded, items, request, p.GetValue(batch));
                var taskReport = new JsonObject
                {
                    ["mode"] = TextGeneration.ResolveMode(loaded, decodeMode).ToString().ToLowerInvariant(),
                    ["accuracy"] = r.Accuracy, ["correct"] = r.Correct, ["items"] = r.Items,
                    ["tokens_per_forward"] = r.TokensPerForward, ["tokens_per_second"] = r.TokensPerSecond,
                };
                if (p.GetValue(json)) Output.WriteJson(p, taskReport);
                else foreach (var (k, v) in taskReport) Output.Out(p).WriteLine($"{k,-20} {v}");
                return 0;
            }
            if (p.GetValue(data) is null) throw new DllmException("give --data FILE (perplexity / NELBO) or --task FILE.jsonl (accuracy)");
            var requested = p.GetValue(mode)!;
            var ar = requested switch
            {
                "ar" => true,
                "diffusion" => false,
                "auto" => !loaded.IsDiffusion,
                _ => throw new DllmException($"unknown mode '{requested}': use ar or diffusion"),
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
}
