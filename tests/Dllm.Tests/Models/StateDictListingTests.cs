using Dllm.Runtime;

namespace Dllm.Tests.Models;

/// <summary>
/// The module tree's tensor names and shapes must equal the HF checkpoint layout. The approved files
/// were checked by hand against the published modeling code (docs/formats.md); a change to the tree
/// shows up here as a diff, with the new listing written next to the approved one.
/// </summary>
public class StateDictListingTests
{
    public StateDictListingTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Archs => new(TinyConfigs.Architectures);

    [Theory]
    [MemberData(nameof(Archs))]
    public void TensorNamesAndShapesMatchTheApprovedListing(string arch)
    {
        using var model = TinyConfigs.Model(arch);
        var listing = string.Join("\n", model.state_dict().Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]").Order(StringComparer.Ordinal)) + "\n";
        var dir = Path.Combine(TestData.RepoRoot, "tests", "Dllm.Tests", "Models", "Approved");
        var approved = Path.Combine(dir, $"{arch}.txt");
        if (!File.Exists(approved) || File.ReadAllText(approved) != listing)
        {
            File.WriteAllText(Path.Combine(dir, $"{arch}.received.txt"), listing);
            Assert.Fail($"state-dict listing of {arch} differs from {approved}; see {arch}.received.txt");
        }
    }
}
