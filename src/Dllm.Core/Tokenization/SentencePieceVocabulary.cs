namespace Dllm.Tokenization;

/// <summary>
/// Turns a tokenizer.json vocabulary with ranked merges into SentencePiece pieces with scores that
/// make SentencePiece's BPE pick the same merges as HF's.
/// </summary>
/// <remarks>
/// HF merges adjacent symbols by the lowest-ranked pair listed in "merges"; SentencePiece merges any
/// adjacent pair whose concatenation is a piece, by the highest piece score, leftmost on ties. With
/// score = -(rank of the piece's first merge) the two agree at every step when
/// (1) a piece HF can never build (no merge chain leads to it from its characters) is not a
/// SentencePiece piece either: we give it an unmatchable text in the model proto (ids and decoding
/// are unaffected, they come from tokenizer.json);
/// (2) every split of a buildable piece into two buildable pieces is a merge, else SentencePiece would
/// merge what HF does not; and (3) the merges of one piece are adjacent in rank order, else the two
/// orders could disagree. HF's converter writes such merges for SentencePiece models, and so does our
/// llama2.c importer; (2) and (3) are checked and reported otherwise. One corner remains: two different
/// splits of one piece overlapping in the text ("ab|a" vs "a|ba" in "aba"): HF takes the lower-ranked
/// split, SentencePiece (and llama2.c) the leftmost.
/// </remarks>
internal static class SentencePieceVocabulary
{
    private const string MergesPath = BpeModelJson.Path + ".merges";

    public static SentencePieceModelProto.Piece[] Build(
        BpeModelJson model, int byteBase, int unkId, IReadOnlyDictionary<int, AddedToken> added)
    {
        Dictionary<string, int> firstRank = RankPieces(model, byteBase);
        HashSet<string> visible = Buildable(model);
        for (int b = 0; b < 256; b++) visible.Add(model.IdToToken[byteBase + b]);
        visible.Add(model.IdToToken[unkId]);
        CheckEverySplitIsAMerge(model, visible);

        var pieces = new SentencePieceModelProto.Piece[model.IdToToken.Length];
        for (int id = 0; id < pieces.Length; id++)
        {
            string token = model.IdToToken[id];
            int type = id == unkId ? SentencePieceModelProto.Unknown
                : id >= byteBase && id < byteBase + 256 ? SentencePieceModelProto.Byte
                : added.TryGetValue(id, out AddedToken? a) ? (a.Special ? SentencePieceModelProto.Control : SentencePieceModelProto.UserDefined)
                : SentencePieceModelProto.Normal;
            // A noncharacter-delimited name cannot be assembled from text: no prefix of it is a piece.
            string text = visible.Contains(token) ? token : $"\uFFFF{id}\uFFFF";
            // Ranks below 2^24 are exact in float; pieces no merge produces are never merge candidates.
            float score = firstRank.TryGetValue(token, out int rank) ? -rank : 0f;
            pieces[id] = new SentencePieceModelProto.Piece(text, score, type);
        }
        return pieces;
    }

    /// <summary>Validates the merges and returns the rank of each merged piece's first merge.</summary>
    private static Dictionary<string, int> RankPieces(BpeModelJson model, int byteBase)
    {
        var firstRank = new Dictionary<string, int>(StringComparer.Ordinal);
        string? previous = null;
        for (int rank = 0; rank < model.Merges.Count; rank++)
        {
            (string left, string right) = model.Merges[rank];
            string merged = left + right;
            if (!model.Vocab.TryGetValue(left, out int leftId) || !model.Vocab.TryGetValue(right, out int rightId) || !model.Vocab.ContainsKey(merged))
                throw new DllmException($"{MergesPath}[{rank}]: ('{left}', '{right}') needs '{left}', '{right}' and '{merged}' in the vocab");
            if (IsByte(leftId, byteBase) || IsByte(rightId, byteBase))
                throw JsonFields.Unsupported($"{MergesPath}[{rank}]", "a merge of byte-fallback tokens");
            if (merged != previous && !firstRank.TryAdd(merged, rank))
                throw new DllmException($"{MergesPath}[{rank}]: the merges making '{merged}' are not adjacent in rank order, which SentencePiece scores cannot express");
            previous = merged;
        }
        return firstRank;
    }

    /// <summary>Pieces HF's BPE can produce: single characters, then whatever merges of producible pieces make.</summary>
    private static HashSet<string> Buildable(BpeModelJson model)
    {
        var buildable = new HashSet<string>(model.Vocab.Keys.Where(IsOneCodePoint), StringComparer.Ordinal);
        bool grew = true;
        while (grew) // merges are usually ranked after their parts, so this takes one or two passes
        {
            grew = false;
            foreach ((string left, string right) in model.Merges)
                if (buildable.Contains(left) && buildable.Contains(right) && buildable.Add(left + right))
                    grew = true;
        }
        return buildable;
    }

    private static void CheckEverySplitIsAMerge(BpeModelJson model, HashSet<string> visible)
    {
        var merges = new HashSet<(string, string)>(model.Merges);
        foreach (string piece in visible)
        {
            for (int i = 1; i < piece.Length; i++)
            {
                if (char.IsLowSurrogate(piece[i])) continue;
                string left = piece[..i], right = piece[i..];
                if (visible.Contains(left) && visible.Contains(right) && !merges.Contains((left, right)))
                    throw new DllmException($"{MergesPath}: '{piece}' = '{left}' + '{right}' are all buildable tokens but that merge is missing, so SentencePiece would merge what HF does not");
            }
        }
    }

    private static bool IsByte(int id, int byteBase) => id >= byteBase && id < byteBase + 256;

    private static bool IsOneCodePoint(string s) => s.Length == 1 || s.Length == 2 && char.IsSurrogatePair(s, 0);
}
