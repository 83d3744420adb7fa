#!/usr/bin/env bash
# Conversion evidence on a real pretrained model (METHOD.md §6 claims), all through the dllm CLI:
#   stories260K (llama2.c, ../shared/data) converted on TinyStories text, 100 stories held out;
#   WSD vs direct MDLM at equal steps; WSD without the document mask, without embedding noise, and
#   without its warm-up;
#   AR perplexity and NELBO bounds at B = 4, 8, 32 on the held-out stories; loss-curve PNGs.
# Usage: bench/scripts/conversion-evidence.sh [OUT_DIR] [STEPS]   (defaults: runs/evidence, 3000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/runs/evidence}"
steps="${2:-3000}"
shared="${DLLM_SHARED_DATA:-$root/../shared/data}"
dllm="$root/dllm"
mkdir -p "$out"
[ -f "$shared/stories260K/stories260K.bin" ] || { echo "needs ../shared/data (stories260K and tinystories)" >&2; exit 1; }

# Held-out split: the last 100 stories of the sample are never trained on.
python3 - "$shared/tinystories/sample.txt" "$out" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
docs = [d.strip("\n") for d in text.split("<|endoftext|>\n") if d.strip()]
open(f"{sys.argv[2]}/train.txt", "w", encoding="utf-8").write("".join(d + "\n<|endoftext|>\n" for d in docs[:-100]))
open(f"{sys.argv[2]}/heldout.txt", "w", encoding="utf-8").write("".join(d + "\n<|endoftext|>\n" for d in docs[-100:]))
PY

[ -f "$out/ar/model.safetensors" ] || "$dllm" import-llama2c "$shared/stories260K/stories260K.bin" "$shared/stories260K/tok512.bin" --out "$out/ar" >/dev/null
results="$out/results.md"
echo "| model | steps | training seconds | B=4 ppl bound | B=8 ppl bound | B=32 ppl bound |" > "$results"
echo "|---|---|---|---|---|---|" >> "$results"
ar=$("$dllm" eval --model "$out/ar" --data "$out/heldout.txt" --mode ar --json)
echo "AR: $ar" | tee "$out/ar.json"

# A finished conversion (model written) is kept and only re-evaluated, so an interrupted script resumes.
convert() {
  local name="$1"; shift
  if [ ! -f "$out/$name/model.safetensors" ]; then
    rm -rf "$out/$name" "$out/$name-run"
    "$dllm" convert --model "$out/ar" --data "$out/train.txt" --out "$out/$name" --steps "$steps" --seed 1 "$@" > "$out/$name.log" 2>&1
  fi
  local seconds=$(tail -n 1 "$out/$name-run/metrics.jsonl" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["elapsed_seconds"]))')
  local row="| $name | $steps | $seconds"
  for b in 4 8 32; do
    local ppl=$("$dllm" eval --model "$out/$name" --data "$out/heldout.txt" --block-size "$b" --samples 4 --seed 7 --json | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["ppl"])')
    row="$row | $ppl"
  done
  echo "$row |" | tee -a "$results"
}

convert wsd
convert mdlm --schedule-kind mdlm
convert wsd-no-document-mask --no-document-mask
convert wsd-no-embedding-noise --embedding-noise 0
# The WSD schedule without its warm-up (stable at L, then the same decay), to isolate what the warm-up adds.
cat > "$out/no-warmup-schedule.json" <<EOF
{"phases": [{"steps": $(( steps * 80 / 100 )), "block_size": 128, "stage": "stable"},
            {"steps": $(( steps - steps * 80 / 100 )), "block_size": 32, "stage": "decay"}]}
EOF
convert wsd-no-warmup --schedule "$out/no-warmup-schedule.json"
"$dllm" plot "$out/wsd-run" --out "$out/wsd-loss.png" --title "stories260K conversion, WSD block schedule"
"$dllm" plot "$out/wsd-run" "$out/mdlm-run" "$out/wsd-no-document-mask-run" "$out/wsd-no-embedding-noise-run" "$out/wsd-no-warmup-run" --out "$out/ablations-loss.png" --title "stories260K conversion: WSD vs MDLM, ablations"
echo "done: $results"
