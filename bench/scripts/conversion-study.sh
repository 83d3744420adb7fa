#!/usr/bin/env bash
# The conversion study of docs/conversion.md on a real pretrained model, all through the dllm CLI:
#   stories260K (llama2.c, ../shared/data) converted on TinyStories text, the last 100 stories held out;
#   every variant at equal steps, tokens and training seed; held-out NELBO bounds at B = 4, 8, 32 with three
#   evaluation seeds (error bars), and generation quality (the AR model's perplexity of 100 sampled
#   continuations, repeated 4-grams) beside the AR model's own samples.
# Usage: bench/scripts/conversion-study.sh OUT_DIR STEPS [VARIANT...]   (default: every variant below)
#   Variants run in the order given; a finished one (model written) is only re-evaluated, an interrupted one resumes
#   from its last checkpoint (convert --resume), so a long study can span several sittings, and
#   two invocations with disjoint variant lists can share OUT_DIR (use OMP_NUM_THREADS=1 for each on 2 cores).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?OUT_DIR}"; steps="${2:?STEPS}"; shift 2
shared="${DLLM_SHARED_DATA:-$root/../shared/data}"
dllm="${DLLM:-$root/dllm}"
bench="${DLLM_BENCH:-dotnet $root/bench/Dllm.Bench/bin/Release/net10.0/Dllm.Bench.dll}"
mkdir -p "$out"
[ -f "$shared/stories260K/stories260K.bin" ] || { echo "needs ../shared/data (stories260K and tinystories)" >&2; exit 1; }

if [ ! -f "$out/heldout.txt" ]; then
python3 - "$shared/tinystories/sample.txt" "$out" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
docs = [d.strip("\n") for d in text.split("<|endoftext|>\n") if d.strip()]
open(f"{sys.argv[2]}/train.txt", "w", encoding="utf-8").write("".join(d + "\n<|endoftext|>\n" for d in docs[:-100]))
open(f"{sys.argv[2]}/heldout.txt", "w", encoding="utf-8").write("".join(d + "\n<|endoftext|>\n" for d in docs[-100:]))
PY
fi
[ -f "$out/ar/model.safetensors" ] || $dllm import-llama2c "$shared/stories260K/stories260K.bin" "$shared/stories260K/tok512.bin" --out "$out/ar" >/dev/null
[ -f "$out/ar.json" ] || $dllm eval --model "$out/ar" --data "$out/heldout.txt" --mode ar --json > "$out/ar.json"
[ -f "$out/ar-samples.json" ] || $bench samples --model "$out/ar" --judge "$out/ar" > "$out/ar-samples.json"

# Schedules as files, so each variant says exactly what it trained (L = 128).
w=$(( steps / 4 )); d=$(( steps / 5 ))
schedule() {  # name, then "steps:block" pairs
  local name=$1; shift; local phases=""
  for p in "$@"; do phases="$phases{\"steps\": ${p%%:*}, \"block_size\": ${p##*:}},"; done
  echo "{\"phases\": [${phases%,}]}" > "$out/$name.schedule.json"
}
schedule wsd-nob1 "$(( w / 3 )):4" "$(( w / 3 )):16" "$(( w - 2 * (w / 3) )):64" "$(( steps - w - d )):128" "$d:32"
schedule wsd-long-warmup "$(( steps / 8 )):1" "$(( steps / 8 )):4" "$(( steps / 8 )):16" "$(( steps / 8 )):64" "$(( steps * 3 / 10 )):128" "$(( steps - steps / 2 - steps * 3 / 10 )):32"
# Small blocks only: B = 1 and 4 warm up an eighth of the run each, then B = 8 (the block the goal is scored at) to the end.
schedule small8 "$(( steps / 8 )):1" "$(( steps / 8 )):4" "$(( steps - 2 * (steps / 8) )):8"
schedule wsd-decay8 "$(( w / 4 )):1" "$(( w / 4 )):4" "$(( w / 4 )):16" "$(( w - 3 * (w / 4) )):64" "$(( steps - w - d )):128" "$d:8"

args_for() {
  # Every variant names its loss weight: the earlier ones ran when 1/t (elbo) was the default; flat is now.
  case "$1" in
    same-wsd) echo "--labels same --weighting elbo" ;;
    shift-wsd) echo "--labels shift --weighting elbo" ;;
    same-mdlm) echo "--labels same --schedule-kind mdlm --weighting elbo" ;;
    shift-mdlm) echo "--labels shift --schedule-kind mdlm --weighting elbo" ;;
    shift-wsd-complementary) echo "--labels shift --complementary --weighting elbo" ;;
    # Twice the compute per step: run it at half the steps of the run it is compared with (equal compute).
    same-wsd-flat-complementary) echo "--labels same --weighting flat --complementary" ;;
    shift-wsd-flat) echo "--labels shift --weighting flat" ;;
    same-wsd-flat) echo "--labels same --weighting flat" ;;
    # The default recipe pulled towards the AR parent's next-token distributions (KL weight 1, then 0.25).
    same-wsd-parent1) echo "--labels same --weighting flat --parent-weight 1" ;;
    # The default recipe converted for the block the goal is scored at: the decay phase ends at B = 8, not 32.
    same-wsd-flat-decay8) echo "--labels same --weighting flat --block-size 8" ;;
    same-wsd-parent025) echo "--labels same --weighting flat --parent-weight 0.25" ;;
    shift-wsd-parent1) echo "--labels shift --weighting flat --parent-weight 1" ;;
    shift-wsd-nob1) echo "--labels shift --schedule $out/wsd-nob1.schedule.json --weighting elbo" ;;
    shift-wsd-long-warmup) echo "--labels shift --schedule $out/wsd-long-warmup.schedule.json --weighting elbo" ;;
    shift-wsd-decay8) echo "--labels shift --schedule $out/wsd-decay8.schedule.json --weighting elbo" ;;
    shift-wsd-lr-half) echo "--labels shift --lr 1e-3 --weighting elbo" ;;
    shift-wsd-lr-double) echo "--labels shift --lr 4e-3 --weighting elbo" ;;
    same-wsd-decay8) echo "--labels same --schedule $out/wsd-decay8.schedule.json --weighting elbo" ;;
    shift-small8) echo "--labels shift --schedule $out/small8.schedule.json --weighting elbo" ;;
    # At the model's own context: 4 windows of 512 tokens a step, the same tokens as 16 of 128.
    same-wsd-L512) echo "--labels same --seq-len 512 --batch-size 4 --weighting elbo" ;;
    shift-wsd-L512) echo "--labels shift --seq-len 512 --batch-size 4 --weighting elbo" ;;
    shift-small8-L512) echo "--labels shift --seq-len 512 --batch-size 4 --schedule $out/small8.schedule.json --weighting elbo" ;;
    same-small8) echo "--labels same --schedule $out/small8.schedule.json --weighting elbo" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(same-wsd shift-wsd same-mdlm shift-mdlm shift-wsd-complementary shift-wsd-flat shift-wsd-nob1 shift-wsd-long-warmup shift-wsd-decay8 shift-wsd-lr-half shift-wsd-lr-double)
for name in "${variants[@]}"; do
  if [ ! -f "$out/$name/model.safetensors" ]; then
    # An interrupted run continues from its last checkpoint (resuming is exact); anything else starts afresh.
    resume=()
    if compgen -G "$out/$name-run/checkpoints/step-*" > /dev/null; then resume=(--resume); else rm -rf "$out/$name" "$out/$name-run"; : > "$out/$name.log"; fi
    # shellcheck disable=SC2046
    $dllm convert --model "$out/ar" --data "$out/train.txt" --out "$out/$name" --steps "$steps" --seed 1 $(args_for "$name") "${resume[@]}" >> "$out/$name.log" 2>&1
  fi
  if [ ! -f "$out/$name.json" ]; then
    seconds=$(tail -n 1 "$out/$name-run/metrics.jsonl" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["elapsed_seconds"]))')
    evals=""
    for b in 4 8 32; do
      for seed in 7 8 9; do
        ppl=$($dllm eval --model "$out/$name" --data "$out/heldout.txt" --block-size "$b" --samples 4 --seed "$seed" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
        evals="$evals\"b${b}_seed${seed}\": $ppl, "
      done
    done
    samples=$($bench samples --model "$out/$name" --judge "$out/ar")
    echo "{\"variant\": \"$name\", \"steps\": $steps, \"seconds\": $seconds, $evals\"samples\": $samples}" > "$out/$name.json"
  fi
  cat "$out/$name.json"
done
