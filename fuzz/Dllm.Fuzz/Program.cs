using System.Diagnostics;
using Dllm.Fuzz;

// dllm-fuzz: the fuzz targets of dllm, driven by SharpFuzz (AFL++ protocol) or replayed without a fuzzer.
//   list                          the targets
//   run TARGET                    one AFL++ persistent-mode fuzzing process (afl-fuzz starts it; see fuzz/run.sh)
//   replay TARGET FILE|DIR...     each input once, failing on anything but a one-line user error or a timeout
//   seed OUT_DIR [SHARED_DATA]    writes the seed corpus, from real files where ../shared/data has them
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: dllm-fuzz list | run TARGET | replay TARGET FILE|DIR... | seed OUT_DIR [SHARED_DATA]");
    return args.Length == 0 ? 2 : 0;
}
switch (args[0])
{
    case "list":
        foreach (var name in Harnesses.All.Keys) Console.WriteLine(name);
        return 0;
    case "run" when args.Length == 2 && Harnesses.All.ContainsKey(args[1]):
        var target = args[1];
        try
        {
            SharpFuzz.Fuzzer.Run(stream =>
            {
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                Harnesses.Run(target, buffer.ToArray());
            });
        }
        finally
        {
            Scratch.Clean();
        }
        return 0;
    case "replay" when args.Length >= 3 && Harnesses.All.ContainsKey(args[1]):
        return Replay(args[1], args.Skip(2));
    case "seed" when args.Length is 2 or 3:
        SeedCorpus.Write(args[1], args.Length == 3 ? args[2] : null);
        return 0;
    default:
        Console.Error.WriteLine($"error: unknown command or target: {string.Join(' ', args)} (targets: {string.Join(", ", Harnesses.All.Keys)})");
        return 2;
}

static int Replay(string target, IEnumerable<string> paths)
{
    var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p]).Order(StringComparer.Ordinal).ToList();
    var failed = 0;
    foreach (var file in files)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            Harnesses.Run(target, File.ReadAllBytes(file));
        }
        catch (Exception e)
        {
            failed++;
            Console.Error.WriteLine($"{file}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            Console.Error.WriteLine(string.Join('\n', (e.StackTrace ?? "").Split('\n').Take(6)));
        }
        if (clock.Elapsed > TimeSpan.FromSeconds(10)) { failed++; Console.Error.WriteLine($"{file}: took {clock.Elapsed.TotalSeconds:F1} s"); }
    }
    Scratch.Clean();
    Console.WriteLine($"{target}: {files.Count} input(s), {failed} failure(s)");
    return failed == 0 ? 0 : 1;
}
