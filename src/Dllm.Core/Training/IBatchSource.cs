using System.Text.Json.Nodes;
using Dllm.Data;
using static TorchSharp.torch;

namespace Dllm.Training;

/// <summary>An endless, resumable stream of training batches.</summary>
public interface IBatchSource
{
    TokenBatch Next(Device device);

    /// <summary>Where the next batch starts, as JSON for the trainer state.</summary>
    JsonNode SavePosition();

    void RestorePosition(JsonNode position);
}
