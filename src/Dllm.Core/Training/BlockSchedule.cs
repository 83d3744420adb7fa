using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dllm.Training;

/// <summary>One stretch of training at a fixed block size.</summary>
public sealed record BlockPhase(long Steps, int BlockSize, string Stage);

/// <summary>
/// The block-size schedule of METHOD.md §3 as data: phases of (steps, block size). The default is the
/// three-stage WSD shape scaled to any L: warm-up 1 -> 4 -> 16 -> 64 ... (each below L), stable at L
/// (MDLM), decay to a small inference block. A file (JSON or YAML) can replace it:
/// <c>{"phases": [{"steps": 100, "block_size": 1, "stage": "warmup"}, ...]}</c>.
/// </summary>
public sealed record BlockSchedule(IReadOnlyList<BlockPhase> Phases)
{
    public long TotalSteps => Phases.Sum(p => p.Steps);

    /// <summary>Block size at a (0-based) step; past the end the last phase's size holds.</summary>
    public int BlockSizeAt(long step)
    {
        long start = 0;
        foreach (var phase in Phases)
        {
            if (step < start + phase.Steps) return phase.BlockSize;
            start += phase.Steps;
        }
        return Phases[^1].BlockSize;
    }

    /// <summary>First step of each phase, for plotting and logs.</summary>
    public IEnumerable<(long Start, BlockPhase Phase)> Starts()
    {
        long start = 0;
        foreach (var phase in Phases)
        {
            yield return (start, phase);
            start += phase.Steps;
        }
    }

    public static BlockSchedule Constant(long steps, int blockSize, string stage = "constant") => new([new BlockPhase(steps, blockSize, stage)]);

    /// <summary>
    /// The default WSD shape for <paramref name="totalSteps"/> steps at sequence length L:
    /// 25% warm-up split evenly over block sizes 1, 4, 16, 64, ... (&lt; L), 55% stable at L, 20% decay at
    /// <paramref name="finalBlockSize"/> (capped at L).
    /// </summary>
    public static BlockSchedule Wsd(long totalSteps, int sequenceLength, int finalBlockSize = Config.DiffusionSettings.DefaultBlockSize, double warmupFraction = 0.25, double decayFraction = 0.20)
    {
        if (sequenceLength < 1) throw new DllmException($"the sequence length must be positive, got {sequenceLength}");
        if (finalBlockSize < 1) throw new DllmException($"the block size must be positive, got {finalBlockSize}");
        var warmSizes = new List<int>();
        for (var b = 1; b < sequenceLength; b *= 4) warmSizes.Add(b);
        var final = Math.Min(finalBlockSize, sequenceLength);
        (long Warm, long Stable, long Decay) Split(long steps)
        {
            var w = Math.Max(warmSizes.Count, (long)Math.Round(steps * warmupFraction));
            var d = Math.Max(1, (long)Math.Round(steps * decayFraction));
            return (w, steps - w - d, d);
        }
        // One message for every count that is too small, with the real minimum (it grows with L's warm-up sizes).
        var minimum = warmSizes.Count + 2L;
        while (Split(minimum).Stable < 1) minimum++;
        if (totalSteps < minimum || Split(totalSteps).Stable < 1)
            throw new DllmException($"--steps {totalSteps} is too few for the WSD block schedule at sequence length {sequenceLength}: it needs at least {minimum} " +
                                    $"({warmSizes.Count} warm-up block size(s), then a stable and a decay phase)");
        var (warm, stable, decay) = Split(totalSteps);
        var phases = new List<BlockPhase>();
        for (var i = 0; i < warmSizes.Count; i++)
        {
            var steps = warm / warmSizes.Count + (i < warm % warmSizes.Count ? 1 : 0);
            phases.Add(new BlockPhase(steps, warmSizes[i], "warmup"));
        }
        phases.Add(new BlockPhase(stable, sequenceLength, "stable"));
        phases.Add(new BlockPhase(decay, final, "decay"));
        return new BlockSchedule(phases);
    }

    public void Validate(int sequenceLength)
    {
        if (Phases.Count == 0) throw new DllmException("the block schedule has no phases");
        foreach (var p in Phases)
        {
            if (p.Steps <= 0) throw new DllmException($"block schedule phase '{p.Stage}' has {p.Steps} steps; each phase needs at least 1");
            if (p.BlockSize <= 0 || p.BlockSize > sequenceLength)
                throw new DllmException($"block schedule phase '{p.Stage}' uses block size {p.BlockSize}, outside 1..{sequenceLength} (the sequence length)");
        }
    }

    public string Describe() => string.Join(" -> ", Phases.Select(p => $"B={p.BlockSize} x{p.Steps} ({p.Stage})"));

    public JsonObject ToJson() => new()
    {
        ["phases"] = new JsonArray(Phases.Select(p => (JsonNode?)new JsonObject { ["steps"] = p.Steps, ["block_size"] = p.BlockSize, ["stage"] = p.Stage }).ToArray()),
    };

    /// <summary>Reads a schedule file: JSON, or YAML with the same fields (.yaml/.yml).</summary>
    public static BlockSchedule Load(string path)
    {
        if (!File.Exists(path)) throw new DllmException($"schedule file not found: {path}");
        var text = File.ReadAllText(path);
        JsonNode? node;
        try
        {
            node = path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
                ? YamlToJson.Convert(text)
                : IO.StrictJson.Parse(text);
        }
        catch (Exception e) when (e is JsonException or YamlDotNet.Core.YamlException)
        {
            throw new DllmException($"{path}: not a valid schedule file ({e.Message})");
        }
        if ((node as JsonObject)?["phases"] is not JsonArray phases)
            throw new DllmException($"{path}: expected an object with a 'phases' list of {{steps, block_size}}");
        var list = new List<BlockPhase>();
        foreach (var (p, i) in phases.Select((p, i) => (p, i)))
        {
            long steps;
            int block;
            try
            {
                steps = p?["steps"]?.GetValue<long>() ?? throw new DllmException($"{path}: phase {i + 1} has no 'steps'");
                block = checked((int)(p?["block_size"]?.GetValue<long>() ?? throw new DllmException($"{path}: phase {i + 1} has no 'block_size'")));
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException)
            {
                throw new DllmException($"{path}: phase {i + 1}: steps and block_size must be integers");
            }
            var stage = (p as JsonObject)?["stage"] switch
            {
                null => $"phase {i + 1}",
                JsonValue v when v.TryGetValue<string>(out var name) => name,
                _ => throw new DllmException($"{path}: phase {i + 1}: stage must be a string"),
            };
            list.Add(new BlockPhase(steps, block, stage));
        }
        return new BlockSchedule(list);
    }
}
