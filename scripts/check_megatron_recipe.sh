#!/usr/bin/env bash
# Check scripts/megatron_cpt.sbatch (the big run of docs/megatron.md) on the
# fixture build, everything but the training: the sbatch script runs with
# DRY_RUN=1 for Llama-3 70B and 8B, and scripts/check_megatron.sh --recipe
# parses the arguments it wrote with Megatron-LM's own parser and builds the
# datasets from them as pretrain_gpt.py does, on CPU.
#
# Usage: MEGATRON_LM=DIR scripts/check_megatron_recipe.sh [WORK_DIR]
#   MEGATRON_LM  a Megatron-LM checkout at tag core_v0.16.1 (the pinned
#                megatron-core), e.g.
#                git clone --branch core_v0.16.1 https://github.com/NVIDIA/Megatron-LM
#   WORK_DIR     default /tmp/almr-recipe-check (emptied first)
#   BIN          where almr and almr-train are (default target/release)
#
# The sweep is a real plan (almr-train sweep run --emit slurm: no cell is
# trained) and a real fit (almr-train sweep fit) of the planted cells of
# docs/sweep.md's example. The mix has the recipe's 8192-token samples and
# 20M tokens: 2442 samples, 4 global batches of 512 (the fixture's 210k
# tokens repeated about 100 times; 2M tokens would be less than one batch).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
: "${MEGATRON_LM:?set MEGATRON_LM to a Megatron-LM checkout (tag core_v0.16.1)}"
work="${1:-/tmp/almr-recipe-check}"
bin="${BIN:-$root/target/release}"
rm -rf "$work"
mkdir -p "$work"
cd "$root"

echo "== build: almr build pipelines/default.toml"
"$bin/almr" build pipelines/default.toml --out "$work/out" >/dev/null

echo "== sweep: the plan (no cell trained) and the fit of docs/sweep.md's planted cells"
"$bin/almr-train" sweep run "$work/sweep" --build "$work/out" --config tiny \
  --almr 0.2,0.5,0.8 --lr 3e-4,1e-3,3e-3 --steps 30,60 --warmup 5 \
  --seq-len 128 --micro-batch 8 --eval-samples 64 --emit slurm >/dev/null
python3 - >"$work/cells.jsonl" <<'EOF'
import json, math, random
rng = random.Random(0)
def law(E, C, g, k, a, b, s, r, lr):
    return E + C * (s + 1e-3) ** -g + k * (math.log(lr) - (a + b * r)) ** 2
zh = (1.8, 0.25, 0.5, 0.06, math.log(3e-4), -1.0)
en = (1.9, 0.3, 0.6, 0.05, math.log(2e-4), -0.5)
print(json.dumps({"base_en_loss": 2.29}))
for r in (0.1, 0.3, 0.5, 0.7, 0.9):
    for lr in (1e-5, 3.16e-5, 1e-4, 3.16e-4, 1e-3):
        z = law(*zh, r, r, lr) * (1 + 0.01 * rng.gauss(0, 1))
        e = law(*en, 1 - r, r, lr) * (1 + 0.01 * rng.gauss(0, 1))
        cell = {"almr": r, "lr": lr, "tokens": 1000000000}
        if (r, lr) == (0.9, 1e-3):
            print(json.dumps({**cell, "val_loss": {"zh": None, "en": None}, "diverged": True}))
        else:
            print(json.dumps({**cell, "val_loss": {"zh": round(z, 4), "en": round(e, 4)}}))
EOF
"$bin/almr-train" sweep fit "$work/cells.jsonl" --out "$work/sweep" | grep -E '^recommended'

run() {  # MODEL NODES
  echo "== megatron_cpt.sbatch, DRY_RUN=1, MODEL=$1 on $2 nodes"
  DRY_RUN=1 MODEL="$1" NODES="$2" OUT="$work/out" SWEEP="$work/sweep" MIX_NAME=llama3-cpt \
    TOKENS=20M RUN_DIR="$work/run-$1" CKPT="$work/no-checkpoint" \
    MEGATRON_LM="$MEGATRON_LM" ALMR="$bin/almr" bash "$here/megatron_cpt.sbatch"
}
run 70B 8
run 8B 1   # the mix exists now: this run checks it and reuses it

for m in 70B:64 8B:8; do  # MODEL:GPUS
  model=${m%:*} gpus=${m#*:}
  echo "== check_megatron.sh --recipe run-$model/pretrain_gpt.args --world-size $gpus"
  "$here/check_megatron.sh" "$work/out" --almr "$bin/almr" \
    --recipe "$work/run-$model/pretrain_gpt.args" --world-size "$gpus" \
    --megatron-lm "$MEGATRON_LM" --recipe-sweep "$work/sweep"
done
