using Dllm.Bench;

// Benchmarks print markdown tables to stdout; docs/benchmarks.md quotes them with the command line.
var which = args.Length > 0 ? args[0] : "help";
var rest = args.Skip(1).ToArray();
switch (which)
{
    case "ar": ArBenchmark.Run(BenchArgs.Parse(rest)); break;
    case "matmul": MatmulCeiling.Print(BenchArgs.Parse(rest)); break;
    case "decode": DecodeBenchmark.Run(rest); break;
    default:
        Console.WriteLine("usage: dotnet run -c Release --project bench/Dllm.Bench -- <benchmark> [--repeats N] [--threads N]");
        Console.WriteLine("benchmarks: ar (AR prefill/decode tokens/s, fp32 and bf16), matmul (GFLOP/s ceiling),");
        Console.WriteLine("            decode [--model DIR] [--tasks FILE] [--items N] (block decoding TPF/speed/accuracy grid; run ./dllm demo first)");
        return which == "help" ? 0 : 2;
}
return 0;
