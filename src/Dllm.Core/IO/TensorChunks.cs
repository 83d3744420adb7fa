using TorchSharp;

namespace Dllm.IO;

/// <summary>Receives one chunk of a tensor's memory and its byte offset within the tensor.</summary>
internal delegate void TensorChunkAction(long byteOffset, Span<byte> chunk);

/// <summary>
/// Walks the raw memory of a contiguous CPU tensor in spans. Spans are limited to 2 GB, and one
/// weight matrix can exceed that (a 150k x 4096 fp32 embedding is 2.4 GB), hence chunks.
/// </summary>
internal static class TensorChunks
{
    public const long DefaultChunkBytes = 1L << 30;

    public static void ForEach(torch.Tensor tensor, TensorChunkAction action, long maxChunkBytes = DefaultChunkBytes)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("expected a contiguous CPU tensor", nameof(tensor));
        var count = tensor.numel();
        if (count == 0) return;
        var elementSize = tensor.element_size();
        var perChunk = Math.Max(1, maxChunkBytes / elementSize);

        using var flat = tensor.reshape(-1); // a view, since the tensor is contiguous
        for (long start = 0; start < count; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, count - start));
            action(start * elementSize, part.bytes);
        }
    }
}
