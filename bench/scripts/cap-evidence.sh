#!/usr/bin/env bash
# CAP vs plain SFT at equal budget from the same converted model, over several seeds (METHOD.md §4, §6):
# task accuracy and tokens per forward on the demo's held-out tasks at threshold 0.9.
# Usage: bench/scripts/cap-evidence.sh [DEMO_DIR] [STEPS] [SEEDS...]   (run ./dllm demo first; defaults: demo, 300, 1 2 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
demo="${1:-$root/demo}"; steps="${2:-300}"; shift $(( $# > 2 ? 2 : $# )) || true
seeds=("${@:-1 2 3}"); [ ${#seeds[@]} -eq 1 ] && read -r -a seeds <<< "${seeds[0]}"
dllm="$root/dllm"
block=$(python3 -c "import json; print(json.load(open('$demo/dlm/config.json'))['dllm']['block_size'])")
out="$demo/cap-evidence"; mkdir -p "$out"
echo "| seed | variant | accuracy | tokens / forward | tokens / s |"
echo "|---|---|---|---|---|"
for seed in "${seeds[@]}"; do
  for variant in sft cap; do
    extra=(); [ "$variant" = cap ] && extra=(--cap-weight 2)
    rm -rf "$out/$variant-$seed" "$out/$variant-$seed-run"
    "$dllm" sft --model "$demo/dlm" --data "$demo/data/tasks_train.jsonl" --out "$out/$variant-$seed" --steps "$steps" \
      --batch-size 16 --block-size "$block" --lr 1e-3 --seed "$seed" --eval-every 100000 --checkpoint-every 100000 "${extra[@]}" > "$out/$variant-$seed.log" 2>&1
    "$dllm" eval --model "$out/$variant-$seed" --task "$demo/data/tasks_test.jsonl" --threshold 0.9 -n 16 --json \
      | python3 -c "import json,sys; r=json.load(sys.stdin); print(f'| $seed | $variant | {r[\"accuracy\"]:.3f} | {r[\"tokens_per_forward\"]:.2f} | {r[\"tokens_per_second\"]:.0f} |')"
  done
done
