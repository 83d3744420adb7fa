namespace Dllm.IO;

/// <summary>
/// One tensor of a safetensors header. <see cref="DataBegin"/> and <see cref="DataEnd"/> are byte
/// offsets relative to the start of the data section, as in the file, end exclusive.
/// </summary>
public sealed record TensorEntry(string Name, SafetensorsDType DType, long[] Shape, long DataBegin, long DataEnd)
{
    public long ByteLength => DataEnd - DataBegin;
}
