using System.CommandLine;
using System.Text.Json.Nodes;
using Dllm.Data;
using Dllm.Evaluation;
using Dllm.Models;

namespace Dllm.Cli.Commands;

internal static class EvalCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model();
        var data = new Option<string>("--data") { Description = "Documents to score: .txt (one per line, or between '<|endoftext|>' lines), .jsonl ('text') or .parquet", Required = true };
        var mode = new Option<string>("--mode") { Description = "diffusion: NELBO bound (default for dLLMs); ar: exact next-token NLL", DefaultValueFactory = _ => "auto" };
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
            "AR NLL per token (nll_per_token, ppl); the first token of each document is context only.")
        {
            model, data, mode, block, samples, seed, maxDocs, maxLen, device, dtype, json,
        };
        command.SetAction(p =>
        {
            using var loaded = LoadedModel.Load(p.GetValue(model)!, SharedOptions.LoadOptions(p, device, dtype));
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
                var b = p.GetValue(block) ?? loaded.Model.Config.Diffusion?.BlockSize ?? 32;
                var r = NelboEvaluator.Evaluate(loaded.Model, scored, b, maskId, p.GetValue(samples), p.GetValue(seed));
                report = new JsonObject
                {
                    ["mode"] = "diffusion", ["nelbo_per_token"] = r.PerToken, ["ppl"] = r.Perplexity, ["block_size"] = b,
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
