using Google.Protobuf;

namespace Dllm.Tokenization;

/// <summary>
/// Writes a SentencePiece ModelProto (sentencepiece_model.proto) so Microsoft.ML.Tokenizers'
/// SentencePieceTokenizer, which has byte fallback, can run a SentencePiece-style tokenizer.json.
/// Only the fields an encoder reads are written; field numbers are the .proto's.
/// </summary>
internal static class SentencePieceModelProto
{
    // SentencePiece.Type
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Byte = 6;

    private const int ModelTypeBpe = 2;

    public sealed record Piece(string Text, float Score, int Type);

    /// <summary>Special ids (-1 for none) with their token texts, and the flags the encoder reads.</summary>
    public sealed record Spec(
        (int Id, string? Text) Unk, (int Id, string? Text) Bos, (int Id, string? Text) Eos, (int Id, string? Text) Pad,
        bool ByteFallback, bool AddDummyPrefix);

    public static byte[] Write(IReadOnlyList<Piece> pieces, Spec spec)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        foreach (Piece piece in pieces)
        {
            WriteMessage(output, 1, o => // ModelProto.pieces
            {
                o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString(piece.Text); // piece
                o.WriteTag(2, WireFormat.WireType.Fixed32); o.WriteFloat(piece.Score);          // score
                o.WriteTag(3, WireFormat.WireType.Varint); o.WriteEnum(piece.Type);            // type
            });
        }
        WriteMessage(output, 2, o => // ModelProto.trainer_spec
        {
            o.WriteTag(3, WireFormat.WireType.Varint); o.WriteEnum(ModelTypeBpe);     // model_type
            o.WriteTag(4, WireFormat.WireType.Varint); o.WriteInt32(pieces.Count);    // vocab_size
            o.WriteTag(35, WireFormat.WireType.Varint); o.WriteBool(spec.ByteFallback); // byte_fallback
            o.WriteTag(40, WireFormat.WireType.Varint); o.WriteInt32(spec.Unk.Id);    // unk_id
            o.WriteTag(41, WireFormat.WireType.Varint); o.WriteInt32(spec.Bos.Id);    // bos_id
            o.WriteTag(42, WireFormat.WireType.Varint); o.WriteInt32(spec.Eos.Id);    // eos_id
            o.WriteTag(43, WireFormat.WireType.Varint); o.WriteInt32(spec.Pad.Id);    // pad_id
            WriteText(o, 45, spec.Unk.Text);                                           // unk_piece
            WriteText(o, 46, spec.Bos.Text);                                           // bos_piece
            WriteText(o, 47, spec.Eos.Text);                                           // eos_piece
            WriteText(o, 48, spec.Pad.Text);                                           // pad_piece
        });
        WriteMessage(output, 3, o => // ModelProto.normalizer_spec
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString("identity"); // name
            o.WriteTag(3, WireFormat.WireType.Varint); o.WriteBool(spec.AddDummyPrefix);   // add_dummy_prefix
            o.WriteTag(4, WireFormat.WireType.Varint); o.WriteBool(false);                 // remove_extra_whitespaces
            o.WriteTag(5, WireFormat.WireType.Varint); o.WriteBool(true);                  // escape_whitespaces
        });
        output.Flush();
        return stream.ToArray();
    }

    private static void WriteText(CodedOutputStream o, int field, string? text)
    {
        if (text is null) return;
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteString(text);
    }

    /// <summary>Writes a length-delimited sub-message; its body is built first to learn its length.</summary>
    private static void WriteMessage(CodedOutputStream output, int field, Action<CodedOutputStream> body)
    {
        using var buffer = new MemoryStream();
        var inner = new CodedOutputStream(buffer);
        body(inner);
        inner.Flush();
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(buffer.GetBuffer(), 0, (int)buffer.Length));
    }
}
