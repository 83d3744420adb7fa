using Dllm.Bench;

// Benchmarks print markdown tables to stdout; docs/benchmarks.md quotes them with the command line.
var which = args.Length > 0 ? args[0] : "help";
var rest = args.Skip(1).ToArray();
// A benchmark's own --help, or an option it does not know, prints the usage below instead of a stack trace.
if (rest.Contains("--help") || rest.Contains("-h")) which = "help";
try
{
switch (which)
{
    case "ar": ArBenchmark.Run(BenchArgs.Parse(rest)); break;
    case "matmul": MatmulCeiling.Print(BenchArgs.Parse(rest)); break;
    case "decode": DecodeBenchmark.Run(rest); break;
    case "train": TrainBenchmark.Run(BenchArgs.Parse(rest)); break;
    case "serve": ServeBenchmark.Run(rest); break;
    case "samples": SampleQuality.Run(rest); break;
    case "block-cost": BlockCostBenchmark.Run(BenchArgs.Parse(rest)); break;
    case "memory": MemoryBenchmark.Run(rest); break;
    case "prefill": PrefillBenchmark.Run(BenchArgs.Parse(rest)); break;
    case "ragged": RaggedBenchmark.Run(BenchArgs.Parse(rest)); break;
    default:
        Console.WriteLine("usage: dotnet run -c Release --project bench/Dllm.Bench -- <benchmark> [--repeats N] [--threads N]");
        Console.WriteLine("benchmarks: ar (AR prefill/decode tokens/s, fp32 and bf16), matmul (GFLOP/s ceiling),");
        Console.WriteLine("            train (AR vs block-diffusion vs MDLM step time, tokens/s, MFU; fp32 and bf16),");
        Console.WriteLine("            decode [--model DIR] [--ar-model DIR] [--tasks FILE] [--items N] [--repeats N] [--threads N] (block decoding TPF/speed/accuracy grid; run ./dllm demo first)");
        Console.WriteLine("            block-cost (one block forward of B positions vs one AR step on a KV cache; 1M/10M/50M, fp32/bf16)");
        Console.WriteLine("            prefill (a burst of prompts to first token: one shared prefill forward vs one each; AR and block, 1M/10M) [--quick]");
        Console.WriteLine("            ragged (AR decoding step of one long and seven short rows: grouped by length vs every row over every column; 1M/10M)");
        Console.WriteLine("            samples --model DIR --judge AR_DIR (judge perplexity and repetition of 100 sampled continuations)");
        Console.WriteLine("            serve (HTTP server throughput, latency and time to first token, continuous batching vs one at a time;");
        Console.WriteLine("                   [--requests 200] [--clients 1,4,16,32] [--max-tokens 32] [--modes ar,diffusion] [--batches 1,16] [--quick]");
        Console.WriteLine("                   [--chat N] [--prefix-cache A,B] [--prefill-chunk A,B] [--long-every N] [--long-words W] [--ar DIR --dllm DIR --tasks FILE])");
        Console.WriteLine("            memory (RSS, managed heap and live tensors over a long conversion and many served requests;");
        Console.WriteLine("                    [--steps 10000] [--requests 10000] [--every 100] [--concurrency 4] [--max-tokens 16] [--csv memory.csv])");
        return which == "help" ? 0 : 2;
}
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"bench {which}: {e.Message} (run with no arguments for the usage)");
    return 2;
}
return 0;
