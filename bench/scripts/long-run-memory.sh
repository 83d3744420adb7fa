#!/usr/bin/env bash
# Long-run memory check: 10,000 training steps of a real conversion and 10,000 decode requests through the HTTP
# server, sampling resident memory, the managed heap and live tensors (bench/Dllm.Bench "memory"). Runs under
# nice 19 with one libtorch thread so it can share a machine; the samples land in a CSV, a summary on stdout.
#
#   bench/scripts/long-run-memory.sh [--steps 10000] [--requests 10000] [--every 100] [--csv runs/memory.csv]
#   bench/scripts/long-run-memory.sh --steps 300 --requests 300 --every 10      (a short check)
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
mkdir -p "$root/runs"
args=("$@")
case " $* " in *" --csv "*) ;; *) args+=(--csv "$root/runs/memory.csv") ;; esac
nice -n 15 dotnet build "$root/bench/Dllm.Bench/Dllm.Bench.csproj" -c Release -nologo -v quiet >/dev/null
exec env OMP_NUM_THREADS=1 nice -n 19 dotnet "$root/bench/Dllm.Bench/bin/Release/net10.0/Dllm.Bench.dll" memory "${args[@]}"
