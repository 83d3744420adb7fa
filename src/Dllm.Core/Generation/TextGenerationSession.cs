using System.Diagnostics;
using Dllm.Models;

namespace Dllm.Generation;

/// <summary>
/// Continuous batching in text: requests are added at any time, join the running batch as the decoder allows
/// (see <see cref="DecodeSession"/>), and every <see cref="Step"/> turns one decoding forward into streamed text and,
/// for each request that ended, its result. A request whose <see cref="GenerationRequest.Cancellation"/> fires leaves
/// at the next step with <see cref="FinishReason.Cancelled"/>. The decode mode and block settings are the session's;
/// token limits, sampling and stop strings are each request's. One thread at a time; dispose it.
/// </summary>
public sealed class TextGenerationSession : IGenerationSession
{
    private readonly LoadedModel _model;
    private readonly DecodeSession _decoder;
    private readonly HashSet<int> _stopIds;
    private readonly Dictionary<int, Sequence> _live = [];

    /// <param name="stopTokenIds">Token ids that end a sequence; null: the checkpoint's.</param>
    /// <param name="prefixes">Keys and values of prompt prefixes shared with other sessions of this model (a server's, a chat's turns); null: none.</param>
    /// <param name="prefillChunk">See <see cref="DecodeSession.PrefillChunk"/> (0: prompts are prefilled at once).</param>
    public TextGenerationSession(LoadedModel model, DecodeMode mode, BlockDecodeOptions? block = null, IReadOnlyList<int>? stopTokenIds = null,
        PrefixCache? prefixes = null, int prefillChunk = 0)
    {
        _model = model;
        Mode = TextGeneration.ResolveMode(model, mode);
        var stops = stopTokenIds ?? model.StopTokenIds;
        _stopIds = stops.ToHashSet();
        bool StopWhen(int seq, IReadOnlyList<int> generated) => _live[seq].Text.StopsAt(generated);
        _decoder = Mode == DecodeMode.Ar
            ? new ArDecodeSession(model.Model, stops, StopWhen, prefixes: prefixes) { PrefillChunk = prefillChunk }
            : new BlockDecodeSession(model.Model, TextGeneration.ResolveBlock(model, block), model.MaskTokenId!.Value, stops, StopWhen, prefixes: prefixes)
            {
                PrefillChunk = prefillChunk,
            };
    }

    public DecodeMode Mode { get; }

    public int Running => _decoder.Running;

    public int Count => _decoder.Count;

    public int Forwards => _decoder.Forwards;
    public long KvCacheBytes => _decoder.KvCacheBytes;

    /// <inheritdoc/>
    /// <remarks>Its token limit is capped at what the context leaves after its prompt.</remarks>
    public int Add(GenerationRequest request)
    {
        var prompt = request.Tokens(_model.Tokenizer);
        var room = _decoder.Room(prompt.Count);
        // The decoder caps the limit at the context too; capping here lets the streamed text end where the result does.
        var options = request.Options with
        {
            MaxNewTokens = room > 0 ? Math.Min(request.Options.MaxNewTokens, room) : request.Options.MaxNewTokens,
            PadTokenId = _model.PadTokenId,
        };
        var id = _decoder.Add(prompt, options);
        _live[id] = new Sequence(request, prompt.Count, new SequenceText(_model.Tokenizer, new StopStrings(request.StopStrings), options.MaxNewTokens, _stopIds));
        return id;
    }

    public GenerationStep? Step(CancellationToken cancel = default)
    {
        foreach (var (id, s) in _live)
            if (s.Request.Cancellation.IsCancellationRequested) _decoder.Cancel(id);
        if (_decoder.Step(cancel) is not { } step) return null;
        var events = new List<GenerationEvent>();
        foreach (var u in step.Updates)
        {
            var s = _live[u.Sequence];
            if (u.Positions.Length > 0) s.Forwards++;   // finish-only updates come without a forward
            s.Text.Apply(u);
            GenerationResult? result = null;
            if (u.Finished is { } finish)
            {
                if (s.Request.Cancellation.IsCancellationRequested) finish = FinishReason.Cancelled;
                var (final, tokens) = s.Text.Final(u.FinalLength);
                result = new GenerationResult(final, tokens, finish, s.PromptTokens, s.Forwards, s.Clock.Elapsed.TotalSeconds, Mode,
                    s.Text.StopTokenAt(u.FinalLength, _stopIds));
                _live.Remove(u.Sequence);
            }
            var delta = s.Text.TakeDelta(final: result is not null);
            if (delta.Length > 0 || result is not null)
                events.Add(new GenerationEvent(u.Sequence, delta, step, result));
        }
        return new GenerationStep(step.Rows, events);
    }

    public void Dispose() => _decoder.Dispose();

    private sealed class Sequence(GenerationRequest request, int promptTokens, SequenceText text)
    {
        public GenerationRequest Request { get; } = request;
        public int PromptTokens { get; } = promptTokens;
        public SequenceText Text { get; } = text;
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public int Forwards { get; set; }
    }
}

/// <summary>A running batch of text requests that others join while it decodes (see <see cref="TextGenerationSession"/>).</summary>
public interface IGenerationSession : IDisposable
{
    /// <summary>Requests decoding now.</summary>
    int Running { get; }

    /// <summary>Requests in the session: decoding, or added and about to join.</summary>
    int Count { get; }

    /// <summary>Decoding forwards so far.</summary>
    int Forwards { get; }

    /// <summary>Bytes the session's key/value caches hold now (see <see cref="DecodeSession.KvCacheBytes"/>).</summary>
    long KvCacheBytes { get; }

    /// <summary>
    /// Tokenises the request and queues it to join; returns its sequence id (its events carry it). Throws
    /// <see cref="DllmException"/> for a prompt that is empty or fills the context, or bad settings.
    /// </summary>
    int Add(GenerationRequest request);

    /// <summary>One decoding forward: its events (possibly none); null once every request has ended.</summary>
    GenerationStep? Step(CancellationToken cancel = default);
}

/// <summary>What one session step produced; <see cref="Rows"/> is how many sequences shared its forward (0: none ran).</summary>
public sealed record GenerationStep(int Rows, IReadOnlyList<GenerationEvent> Events);
