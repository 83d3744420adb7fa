#!/usr/bin/env bash
# Fuzzes dllm's parsers with SharpFuzz + AFL++, each target for a bounded time or number of executions.
#
#   fuzz/run.sh [--seconds N | --execs N] [TARGET...]     (default: every target, 600 s each)
#   fuzz/run.sh --list
#
# What it does, idempotently:
#   1. installs what is missing: afl-fuzz (Debian package afl++, through apt-get) and the sharpfuzz dotnet tool
#      (fuzz/dotnet-tools.json, SharpFuzz.CommandLine 2.3.0);
#   2. builds fuzz/Dllm.Fuzz into fuzz/.work/bin, writes the seed corpus (real files from ../shared/data where
#      present, dllm's own writers otherwise) and instruments Dllm.Core.dll and Dllm.Serving.dll;
#   3. runs afl-fuzz per target under nice 19 with one libtorch thread; the kept regression inputs
#      (fuzz/regressions/TARGET) join the seeds;
#   4. copies every crash or hang into fuzz/regressions/TARGET (the test suite replays that folder) and prints
#      a table of executions, corpus size, crashes and hangs per target (also in fuzz/.work/summary.md).
set -euo pipefail

fuzz="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
work="${DLLM_FUZZ_WORK:-$fuzz/.work}"
seconds=600
execs=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --execs) execs="$2"; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

# 1. Tools.
if ! command -v afl-fuzz >/dev/null; then
  echo "installing afl++ (apt-get)..." >&2
  apt-get install -y afl++ >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y afl++ >/dev/null; }
fi
(cd "$fuzz" && dotnet tool restore >/dev/null)

# 2. Build, seed and instrument a private copy (rebuilt when a source changed).
bin="$work/bin"
stamp="$work/.built"
if [ ! -f "$stamp" ] || [ -n "$(find "$fuzz/Dllm.Fuzz" "$fuzz/fixtures" "$fuzz/../src" \( -name obj -o -name bin \) -prune -o -newer "$stamp" -type f -print -quit)" ]; then
  echo "building the fuzz targets..." >&2
  rm -rf "$bin" "$work/seeds"
  mkdir -p "$work"
  nice -n 15 dotnet build "$fuzz/Dllm.Fuzz/Dllm.Fuzz.csproj" -c Release -o "$bin" -nologo -v quiet >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
  # Seeds first: they are written by the uninstrumented code.
  nice -n 15 dotnet "$bin/dllm-fuzz.dll" seed "$work/seeds"
  for assembly in Dllm.Core.dll Dllm.Serving.dll; do
    (cd "$fuzz" && dotnet sharpfuzz "$bin/$assembly")
  done
  touch "$stamp"
fi
all=$(dotnet "$bin/dllm-fuzz.dll" list)
if [ -n "${list:-}" ]; then echo "$all"; exit 0; fi
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$(echo $all)"

# 3. Fuzz.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
export AFL_FORKSRV_INIT_TMOUT=120000 OMP_NUM_THREADS=1
limit=(-V "$seconds")
[ -n "$execs" ] && limit=(-E "$execs")
status=0
summary="$work/summary.md"
printf "| target | executions | execs/s | corpus | crashes | hangs | run time |\n|---|---:|---:|---:|---:|---:|---:|\n" >"$summary"
for t in "${targets[@]}"; do
  in="$work/in/$t"
  out="$work/out/$t"
  rm -rf "$in" "$out"
  mkdir -p "$in" "$work/out" "$fuzz/regressions/$t"
  cp "$work/seeds/$t"/* "$in"/ 2>/dev/null || true
  cp "$fuzz/regressions/$t"/* "$in"/ 2>/dev/null || true
  echo "fuzzing $t (${limit[*]})..." >&2
  nice -n 19 afl-fuzz -i "$in" -o "$out" -t 20000 -m none "${limit[@]}" -- dotnet "$bin/dllm-fuzz.dll" run "$t" >"$work/$t.log" 2>&1 \
    || { echo "afl-fuzz failed for $t: see $work/$t.log" >&2; tail -5 "$work/$t.log" >&2; status=1; }
  stats="$out/default/fuzzer_stats"
  field() { grep -E "^$1 " "$stats" | sed 's/.*: //'; }
  found=0
  for kind in crashes hangs; do
    for f in "$out/default/$kind"/id:*; do
      [ -e "$f" ] || continue
      cp "$f" "$fuzz/regressions/$t/$kind-$(sha1sum "$f" | cut -c1-12)"
      found=$((found + 1))
    done
  done
  [ -f "$stats" ] && printf "| %s | %s | %s | %s | %s | %s | %s s |\n" "$t" "$(field execs_done)" "$(field execs_per_sec)" "$(field corpus_count)" \
    "$(field saved_crashes)" "$(field saved_hangs)" "$(field run_time)" >>"$summary"
  if [ "$found" -gt 0 ]; then echo "$t: $found crash/hang input(s) kept in fuzz/regressions/$t" >&2; status=1; fi
done
cat "$summary"
exit $status
