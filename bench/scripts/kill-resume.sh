#!/usr/bin/env bash
# Kill -9 and signal test for the training verbs. For each of convert, sft and dpo it trains once without
# interruption, then trains again while interrupting the process N times - kill -9 at a random moment, kill -9
# while a checkpoint is being written, kill -9 right after a save (when pruning runs), Ctrl-C (SIGINT) and SIGTERM,
# in turn - resuming with --resume after each. After every interruption each checkpoint listed in index.json must
# pass `dllm inspect` (all load-time checks, weights included); at the end the resumed run's model.safetensors must
# be bit for bit the uninterrupted run's.
#
#   bench/scripts/kill-resume.sh [--kills 20] [--verbs "convert sft dpo"] [--work DIR] [--seed 1]
#
# Needs ../shared/data (stories260K, TinyStories). Runs under nice 19 with one libtorch thread. The full run
# (20 kills per verb, 160 steps each) takes roughly 20-30 minutes on an idle 2-core machine; --kills 3 is a smoke test.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
kills=20
verbs="convert sft dpo"
work="${TMPDIR:-/tmp}/dllm-kill-resume"
seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills="$2"; shift 2 ;;
    --verbs) verbs="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
RANDOM=$seed
shared="$root/../shared/data"
[ -f "$shared/stories260K/stories260K.bin" ] && [ -f "$shared/tinystories/sample.txt" ] || { echo "needs $shared (stories260K, tinystories)" >&2; exit 2; }

"$root/dllm" doctor >/dev/null   # builds the CLI when needed
dll="$root/.build/cli/dllm.dll"
dllm() { OMP_NUM_THREADS=1 nice -n 19 dotnet "$dll" "$@"; }
# For the interrupted runs: exec, so the PID that `&` gives is dotnet's own. Without it the signals reached only the
# subshell and the training process ran on, orphaned, while the next run started beside it.
dllm_exec() { OMP_NUM_THREADS=1 exec nice -n 19 dotnet "$dll" "$@"; }
now() { date +%s.%N; }

# --- Inputs: the real stories260K model, TinyStories text, and small task and preference files.
rm -rf "$work"
mkdir -p "$work"
dllm import-llama2c "$shared/stories260K/stories260K.bin" "$shared/stories260K/tok512.bin" --out "$work/ar" >/dev/null
head -n 4000 "$shared/tinystories/sample.txt" >"$work/stories.txt"
for i in $(seq 1 40); do
  a=$((i % 10)); b=$(((i * 7) % 10))
  echo "{\"prompt\": \"Compute: $a + $b =\", \"answer\": \" $((a + b))\"}" >>"$work/sft.jsonl"
  echo "{\"prompt\": \"Compute: $a + $b =\", \"chosen\": \" $((a + b))\", \"rejected\": \" $((a + b + 1))\"}" >>"$work/pairs.jsonl"
done
common=(--batch-size 2 --checkpoint-every 3 --eval-every 3 --keep-last 2 --seed 7)
# Enough steps that every interruption lands before the end (each restart resumes from the last checkpoint).
steps=$((kills * 8 > 60 ? kills * 8 : 60))
args_for() {
  case "$1" in
    convert) echo "--model $work/ar --data $work/stories.txt --steps $steps --block-size 8 --seq-len 32" ;;
    sft) echo "--model $work/ar --data $work/sft.jsonl --steps $steps --block-size 8 --max-length 64" ;;
    dpo) echo "--model $work/convert-ref --data $work/pairs.jsonl --steps $steps --block-size 8 --max-length 64 --elbo-samples 2" ;;
  esac
}

# Each listed checkpoint must be whole and loadable; verified ones are remembered.
declare -A verified
check_listed() {
  local run="$1" index="$1/checkpoints/index.json" dir
  [ -f "$index" ] || return 0
  for dir in $(grep -o '"dir": "[^"]*"' "$index" | cut -d'"' -f4); do
    [ -n "${verified[$run/$dir]:-}" ] && continue
    if ! dllm inspect "$run/checkpoints/$dir" >/dev/null 2>"$work/inspect.err"; then
      echo "FAIL: $run/checkpoints/$dir is listed in index.json but does not pass inspect: $(cat "$work/inspect.err")" >&2
      return 1
    fi
    verified[$run/$dir]=1
  done
}

has_checkpoint() { [ -f "$1/checkpoints/index.json" ] && grep -q '"dir"' "$1/checkpoints/index.json"; }

summary="| verb | interruptions | kill -9 (random / in a write / after a save) | SIGINT / SIGTERM | hit a write | hit a prune | checkpoints verified | final model |\n|---|---:|---|---|---:|---:|---:|---|\n"
failed=0
for verb in $verbs; do
  read -r -a args <<<"$(args_for "$verb")"
  echo "== $verb: uninterrupted reference run" >&2
  start=$(now)
  dllm "$verb" "${args[@]}" "${common[@]}" --out "$work/$verb-ref" >"$work/$verb-ref.log" 2>&1
  reference=$(echo "$(now) - $start" | bc)
  out="$work/$verb-kill"
  run="$out-run"
  n=0; restarts=0; random_kills=0; write_kills=0; save_kills=0; sigints=0; sigterms=0; hit_write=0; hit_prune=0
  while [ $n -lt "$kills" ]; do
    extra=()
    has_checkpoint "$run" && extra=(--resume)
    mode=$((n % 5))
    dllm_exec "$verb" "${args[@]}" "${common[@]}" --out "$out" "${extra[@]}" >>"$work/$verb-kill.log" 2>&1 &
    pid=$!
    case $mode in
      0|3|4) # a random moment of what is left of the run (startup included): a resumed run is shorter, and a sleep
             # drawn over the whole reference time would mostly outlast it and end the campaign early
        last=$(grep -o '"step": [0-9]*' "$run/checkpoints/index.json" 2>/dev/null | awk '{print $2}' | sort -n | tail -1 || true)
        sleep "$(echo "scale=3; $reference * ($steps - ${last:-0}) / $steps * $RANDOM / 32768" | bc)" ;;
      1) # while a checkpoint is being written: its staging folder exists
        until compgen -G "$run/checkpoints/.step-*.saving-*" >/dev/null || ! kill -0 $pid 2>/dev/null; do sleep 0.005; done ;;
      2) # right after a save lands in the index, when pruning runs
        before=$(stat -c %y "$run/checkpoints/index.json" 2>/dev/null || echo none)
        until [ "$(stat -c %y "$run/checkpoints/index.json" 2>/dev/null || echo none)" != "$before" ] || ! kill -0 $pid 2>/dev/null; do sleep 0.002; done ;;
    esac
    if ! kill -0 $pid 2>/dev/null; then   # it got to the end first: not an interruption
      wait $pid || true
      # A tiny model's save can fall between two polls. Start over from nothing: the final model must still equal
      # the reference's, and the campaign goes on until it has its interruptions.
      [ -f "$out/model.safetensors" ] && { rm -rf "$out" "$run"; restarts=$((restarts + 1)); }
      continue
    fi
    case $mode in
      3) kill -INT $pid; sigints=$((sigints + 1)) ;;
      4) kill -TERM $pid; sigterms=$((sigterms + 1)) ;;
      *) kill -KILL $pid
         case $mode in 0) random_kills=$((random_kills + 1)) ;; 1) write_kills=$((write_kills + 1)) ;; 2) save_kills=$((save_kills + 1)) ;; esac ;;
    esac
    wait $pid 2>/dev/null || true
    n=$((n + 1))
    # What the interruption left behind tells where it landed (the next run sweeps these).
    compgen -G "$run/checkpoints/.step-*.saving-*" >/dev/null && hit_write=$((hit_write + 1))
    if compgen -G "$run/checkpoints/.deleting-*" >/dev/null \
       || { [ -d "$run/checkpoints" ] && for d in "$run"/checkpoints/step-*; do [ -d "$d" ] && ! grep -q "\"$(basename "$d")\"" "$run/checkpoints/index.json" && echo unlisted; done | grep -q unlisted; }; then
      hit_prune=$((hit_prune + 1))
    fi
    check_listed "$run" || failed=1
  done
  echo "== $verb: $n interruptions ($restarts fresh starts after a run ended first), finishing with --resume" >&2
  if [ ! -f "$out/model.safetensors" ]; then
    extra=()
    has_checkpoint "$run" && extra=(--resume)
    dllm "$verb" "${args[@]}" "${common[@]}" --out "$out" "${extra[@]}" >>"$work/$verb-kill.log" 2>&1
  fi
  check_listed "$run" || failed=1
  if cmp -s "$work/$verb-ref/model.safetensors" "$out/model.safetensors"; then final="bit for bit equal"
  else final="DIFFERENT"; failed=1; fi
  count=0
  for k in "${!verified[@]}"; do [[ $k == "$run/"* ]] && count=$((count + 1)); done
  summary+="| $verb | $n | $random_kills / $write_kills / $save_kills | $sigints / $sigterms | $hit_write | $hit_prune | $count | $final |\n"
done
printf "%b" "$summary"
[ $failed -eq 0 ] && echo "all checks passed" || { echo "FAILED (logs in $work)"; exit 1; }
