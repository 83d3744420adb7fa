using System.CommandLine;
using System.Text.Json.Nodes;
using Dllm.Config;
using Dllm.Generation;
using Dllm.Models;

namespace Dllm.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Build()
    {
        var model = SharedOptions.Model();
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to continue (used as is: apply a chat template yourself, or use dllm chat)", Required = true };
        var maxNew = new Option<int>("--max-new-tokens", "-n") { Description = "Most tokens to generate (also capped by the model's context)", DefaultValueFactory = _ => 128 };
        var temperature = new Option<double>("--temperature", "-t") { Description = "0 = greedy (deterministic); higher = more random", DefaultValueFactory = _ => 0.0 };
        var topK = new Option<int>("--top-k") { Description = "Sample only among the k most likely tokens (0 = off)", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Sample only among the smallest set of tokens whose probability reaches p (1 = off)", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "Random seed for sampling (same seed, same output)", DefaultValueFactory = _ => 0 };
        var stop = new Option<string[]>("--stop") { Description = "Stop when this text appears (repeatable); it is not included in the output", AllowMultipleArgumentsPerToken = false };
        var mode = new Option<DecodeMode>("--mode") { Description = "ar = one token per forward; diffusion = block-wise parallel decoding (dLLM checkpoints); auto picks by checkpoint", DefaultValueFactory = _ => DecodeMode.Auto };
        var blockSize = SharedOptions.BlockSize();
        var threshold = SharedOptions.Threshold();
        var maxSteps = SharedOptions.MaxStepsPerBlock();
        var stopFill = SharedOptions.StopFill();
        var credit = SharedOptions.Credit();
        var editingThreshold = SharedOptions.EditingThreshold();
        var maxPostSteps = SharedOptions.MaxPostSteps();
        var noCache = new Option<bool>("--no-cache") { Description = "Diffusion: recompute the whole window every step (the reference behaviour; slower, same tokens)" };
        var noSpecial = new Option<bool>("--no-bos") { Description = "Do not add the tokenizer's BOS token in front of the prompt" };
        var threads = SharedOptions.Threads();
        var device = SharedOptions.Device();
        var dtype = SharedOptions.DType();
        var json = SharedOptions.Json();
        var command = new Command("generate",
            "Continue a prompt with a model. AR checkpoints decode one token per forward; diffusion checkpoints decode " +
            $"blocks of tokens in parallel (by default the block the checkpoint was last trained at, else {DiffusionSettings.DefaultBlockSize}; " +
            $"threshold {new BlockDecodeOptions().Threshold} and {new BlockDecodeOptions().MaxStepsPerBlock} steps per block, as LLaDA2.0). Text " +
            "streams to stdout as it is produced; --json prints one object with text, token_ids (generated ids only), " +
            "forwards (decoding forwards; the prompt prefill is not counted), tokens_per_forward (decoded tokens, the stop " +
            "token included, / forwards: AR is exactly 1) and tokens_per_second (the same tokens over wall time). " +
            "--editing-threshold turns on LLaDA2.1's token editing (decided tokens of the current block may be replaced; " +
            "the text of a block streams once the block is final).")
        {
            model, prompt, maxNew, temperature, topK, topP, seed, stop, mode, blockSize, threshold, maxSteps, stopFill, credit, editingThreshold, maxPostSteps, noCache, noSpecial, threads, device, dtype, json,
        };
        command.SetAction((p, cancel) =>
        {
            SharedOptions.ApplyThreads(p, threads);
            using var loaded = LoadedModel.Load(p.GetValue(model)!, SharedOptions.LoadOptions(p, device, dtype));
            var request = new GenerationRequest
            {
                Prompt = p.GetValue(prompt)!,
                AddSpecialTokens = !p.GetValue(noSpecial),
                StopStrings = p.GetValue(stop) ?? [],
                Mode = p.GetValue(mode),
                Block = new BlockDecodeOptions(
                    p.GetValue(blockSize) ?? loaded.DefaultBlockSize,
                    p.GetValue(threshold), p.GetValue(maxSteps), UseCache: !p.GetValue(noCache),
                    StopFill: p.GetValue(stopFill), Credit: p.GetValue(credit) ? new CreditOptions() : null,
                    Editing: SharedOptions.Editing(p, editingThreshold, maxPostSteps)),
                Options = new DecodeOptions
                {
                    MaxNewTokens = p.GetValue(maxNew),
                    Sampling = new SamplingOptions(p.GetValue(temperature), p.GetValue(topK), p.GetValue(topP), p.GetValue(seed)),
                },
            };
            var output = Output.Out(p);
            var asJson = p.GetValue(json);
            GenerationResult? result = null;
            foreach (var e in TextGeneration.Stream(loaded, [request], cancel))
            {
                if (!asJson && e.Delta.Length > 0) { output.Write(e.Delta); output.Flush(); }
                result ??= e.Result;
            }
            if (result is null) throw new OperationCanceledException();
            if (asJson) Output.WriteJson(p, ToJson(result));
            else
            {
                output.WriteLine();
                Output.Err(p).WriteLine($"[{result.DecodedTokens} tokens decoded (stop token included), {result.Forwards} forwards, {result.TokensPerForward:F2} tokens/forward, {result.TokensPerSecond:F1} tokens/s, {result.Mode.ToString().ToLowerInvariant()}, finish: {result.Finish.ToString().ToLowerInvariant()}]");
            }
            return Task.FromResult(0);
        });
        return command;
    }

    internal static JsonObject ToJson(GenerationResult r) => new()
    {
        ["text"] = r.Text,
        ["token_ids"] = new JsonArray(r.TokenIds.Select(t => (JsonNode?)t).ToArray()),
        ["prompt_tokens"] = r.PromptTokens,
        ["generated_tokens"] = r.TokenIds.Length,
        ["forwards"] = r.Forwards,
        ["tokens_per_forward"] = Math.Round(r.TokensPerForward, 4),
        ["tokens_per_second"] = Math.Round(r.TokensPerSecond, 2),
        ["seconds"] = Math.Round(r.Seconds, 4),
        ["mode"] = r.Mode.ToString().ToLowerInvariant(),
        ["finish_reason"] = r.Finish.ToString().ToLowerInvariant(),
    };
}
