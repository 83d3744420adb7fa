namespace Dllm.Generation;

public enum FinishReason { Stop, Length, Cancelled }

/// <summary>
/// What one decoding step did to one sequence of the batch: positions (counted from the first
/// generated token) that received final tokens, with their confidences. CPU data only, so the CLI,
/// the chat view and the server consume the same stream without touching tensors.
/// When the sequence ends, <see cref="Finished"/> is set and <see cref="FinalLength"/> is its generated
/// length: tokens at or past it (the stop token, and in block decoding anything after it in the block)
/// are not part of the output. <see cref="Provisional"/> tokens (LLaDA2.1 editing) may still be replaced
/// by a later update of the same block; the block's last update restates all of it as final.
/// </summary>
public sealed record SequenceUpdate(int Sequence, int[] Positions, int[] Tokens, float[] Confidences,
    FinishReason? Finished = null, int FinalLength = -1, bool Provisional = false);

/// <summary>
/// One model forward of a decoder and its effect on the batch. <see cref="Forward"/> counts decoding
/// forwards (prefill excluded). For block decoding, <see cref="BlockStart"/> and <see cref="BlockLength"/>
/// give the generated-token span of the first row's block (AR: its single new position). <see cref="Rows"/> is how
/// many sequences shared this step's forward (0 for a step that only reports sequences ending). <see cref="Prefilled"/>
/// counts the prompt tokens of joining sequences prefilled during this step (bounded by
/// <see cref="DecodeSession.PrefillChunk"/> while others decode).
/// </summary>
public sealed record DecodeStep(int Forward, IReadOnlyList<SequenceUpdate> Updates, int BlockStart = 0, int BlockLength = 1, int Rows = 0, int Prefilled = 0);

/// <summary>The outcome for one prompt once decoding ends.</summary>
public sealed record DecodedSequence(int[] Tokens, FinishReason Finish);
