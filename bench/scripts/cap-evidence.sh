#!/usr/bin/env bash
# CAP vs plain SFT at equal budget from the same converted model, over several seeds (METHOD.md §4, §6):
# task accuracy (overall and per kind) and tokens per forward on the demo's held-out tasks, greedy, one prompt
# at a time, at the demo's block size. Each run writes the mean of its last 5 checkpoints, 25 steps apart, as the demo does.
# Usage: bench/scripts/cap-evidence.sh [DEMO_DIR] [STEPS] [SEEDS...]   (run ./dllm demo first; defaults: demo, the
#        demo's SFT steps, 1 2 3 4 5). Learning rate, batch and block are the demo's (read from DEMO_DIR/cap-run);
#        THRESHOLDS (default 0.95, the demo's and LLaDA2.0's) and BLOCKS (default: the trained block) set the
#        decoding grid: every model is decoded at each threshold x block (models already trained are only decoded).
#        VARIANTS (default "sft cap") picks what is trained: VARIANTS=cap compares CAP across converted models, and
#        "dpo" aligns each seed's SFT+CAP model with the demo's DPO settings (read from DEMO_DIR/dpo-run; list it after cap).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
demo="${1:-$root/demo}"
plan="$demo/cap-run/train_config.json"   # SFT+CAP is trained in every demo; plain SFT only with --plain-sft
[ -f "$plan" ] || { echo "no $plan: run ./dllm demo --out $demo first" >&2; exit 1; }
read -r demo_steps lr batch block <<< "$(python3 -c "import json; p=json.load(open('$plan')); t=p['trainer']; print(t['Steps'], t['PeakLearningRate'], t['BatchSize'], p['block_size'])")"
steps="${2:-$demo_steps}"; shift $(( $# > 2 ? 2 : $# )) || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4 5)
dllm="${DLLM:-$root/dllm}"
out="$demo/cap-evidence"; mkdir -p "$out"
read -r -a thresholds <<< "${THRESHOLDS:-${THRESHOLD:-0.95}}"
read -r -a blocks <<< "${BLOCKS:-$block}"
if [[ " ${VARIANTS:-} " == *" dpo "* ]]; then
  # The demo's DPO settings; plans before the chosen-NLL weight was recorded ran the demo's 1.0.
  read -r dsteps dlr dbatch beta draws nll <<< "$(python3 -c "import json; p=json.load(open('$demo/dpo-run/train_config.json')); t=p['trainer']; print(t['Steps'], t['PeakLearningRate'], t['BatchSize'], p['beta'], p['elbo_samples'], p.get('chosen_nll_weight', 1.0))")"
fi
echo "steps $steps, lr $lr, batch $batch, trained at block $block"
echo "| seed | variant | block | threshold | accuracy | per kind (accuracy, TPF) | tokens / forward | ceiling |"
echo "|---|---|---|---|---|---|---|---|"
for seed in "${seeds[@]}"; do
  for variant in ${VARIANTS:-sft cap}; do
    extra=(); [ "$variant" = cap ] && extra=(--cap-weight 2)
    if [ "$variant" = dpo ] && [ ! -f "$out/dpo-$seed/model.safetensors" ]; then
      [ -f "$out/cap-$seed/model.safetensors" ] || { echo "dpo needs $out/cap-$seed: list cap before dpo in VARIANTS" >&2; exit 1; }
      rm -rf "$out/dpo-$seed" "$out/dpo-$seed-run"
      $dllm dpo --model "$out/cap-$seed" --data "$demo/data/preferences_train.jsonl" --out "$out/dpo-$seed" --steps "$dsteps" --batch-size "$dbatch" \
        --lr "$dlr" --weight-decay 0.05 --beta "$beta" --elbo-samples "$draws" --chosen-nll-weight "$nll" --block-size "$block" --seed "$seed" \
        --eval-every 100000 --checkpoint-every 100000 > "$out/dpo-$seed.log" 2>&1
    elif [ "$variant" != dpo ] && [ ! -f "$out/$variant-$seed/model.safetensors" ]; then
      rm -rf "$out/$variant-$seed" "$out/$variant-$seed-run"
      $dllm sft --model "$demo/dlm" --data "$demo/data/tasks_train.jsonl" --out "$out/$variant-$seed" --steps "$steps" --weight-decay 0.05 \
        --batch-size "$batch" --block-size "$block" --lr "$lr" --seed "$seed" --eval-every 100000 --checkpoint-every 25 --keep-last 5 --average-last 5 "${extra[@]}" > "$out/$variant-$seed.log" 2>&1
    fi
    for b in "${blocks[@]}"; do
      for threshold in "${thresholds[@]}"; do
        $dllm eval --model "$out/$variant-$seed" --task "$demo/data/tasks_test.jsonl" --block-size "$b" --threshold "$threshold" -n 40 --batch 1 --json \
          | python3 -c "import json,sys; r=json.load(sys.stdin); k=', '.join(f'{n} {v[\"accuracy\"]:.2f}/{v[\"tokens_per_forward\"]:.1f}' for n,v in r['kinds'].items()); print(f'| $seed | $variant | $b | $threshold | {r[\"accuracy\"]:.3f} | {k} | {r[\"tokens_per_forward\"]:.2f} | {r[\"tokens_per_forward_ceiling\"]:.2f} |')"
      done
    done
  done
done
