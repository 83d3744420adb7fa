namespace Dllm.Bench;

/// <summary>Options common to every benchmark.</summary>
public sealed record BenchArgs(int Repeats, int Threads, bool Quick)
{
    public static BenchArgs Parse(string[] args)
    {
        int repeats = 5, threads = 0;
        var quick = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--repeats": repeats = int.Parse(args[++i]); break;
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--quick": quick = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        return new BenchArgs(repeats, threads, quick);
    }
}
