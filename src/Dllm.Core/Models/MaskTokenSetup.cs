using Dllm.Models.Layers;
using Dllm.Tokenization;
using static TorchSharp.torch;

namespace Dllm.Models;

/// <summary>
/// Gives a model a MASK token (METHOD.md §1). A token the tokenizer already has is reused; otherwise
/// "&lt;|mask|&gt;" is added. If its id falls outside the embedding table, the table and LM head grow;
/// either way the mask row starts as the mean of the rows of tokens the tokenizer knows, a neutral
/// point the model can move from. The id is recorded in config (mask_token_id) and tokenizer files.
/// </summary>
public static class MaskTokenSetup
{
    public const string DefaultMaskToken = "<|mask|>";

    /// <summary>Returns the model and tokenizer to use; when they change, the inputs are disposed/replaced.</summary>
    public static (CausalLM Model, TextTokenizer Tokenizer) Ensure(CausalLM model, TextTokenizer tokenizer)
    {
        if (model.Config.MaskTokenId is not null) return (model, tokenizer);
        var knownRows = Math.Min(tokenizer.VocabSize, model.Config.VocabSize);
        int id;
        if (tokenizer.MaskId is { } existing) id = existing;
        else tokenizer = tokenizer.WithAddedSpecialToken(DefaultMaskToken, out id);

        var config = model.Config with { VocabSize = Math.Max(model.Config.VocabSize, id + 1), MaskTokenId = id };
        var grown = ModelFactory.Create(config, model.Placement);
        using (no_grad())
        {
            var source = model.state_dict();
            foreach (var (name, target) in grown.state_dict())
            {
                using var scope = NewDisposeScope();
                var from = source[name];
                if (from.shape.SequenceEqual(target.shape)) { target.copy_(from); continue; }
                // Embedding or LM head: old rows first, then fill the rest.
                target.narrow(0, 0, from.shape[0]).copy_(from);
                target.narrow(0, from.shape[0], target.shape[0] - from.shape[0]).copy_(from.narrow(0, 0, knownRows).mean([0], keepdim: true).expand(target.shape[0] - from.shape[0], -1));
            }
            foreach (var weight in new[] { grown.Embeddings.Weight, grown.OutputWeight }.Distinct())
            {
                using var scope = NewDisposeScope();
                weight[id].copy_(weight.narrow(0, 0, knownRows).mean([0]));
            }
        }
        if (!model.training) grown.eval();
        model.Dispose();
        return (grown, tokenizer);
    }
}
