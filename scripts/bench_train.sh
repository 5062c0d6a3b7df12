#!/usr/bin/env bash
# Training throughput of almr-train beside PyTorch, same model, batch and
# sequence length, on one device.
#
#   scripts/bench_train.sh [--device cpu|cuda] [--config tiny] [--micro-batch 8]
#                          [--seq-len 128] [--steps 20] [--dtype f32|bf16]
#
# Builds the fixture shards and a mix with the release `almr`, trains
# `--steps` steps with `almr-train` (tokens/s: median over the steps after the
# first 3, from metrics.jsonl), then runs scripts/bench_train_torch.py with the
# same settings. PYTHON (default: python3) must have torch. ALMR_TRAIN may name
# a prebuilt almr-train (e.g. the CUDA build from scripts/build_cuda.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cpu config=tiny micro=8 seq=128 steps=20 dtype=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --micro-batch) micro=$2; shift 2 ;;
    --seq-len) seq=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$dtype" ] || { [ "$device" = cpu ] && dtype=f32 || dtype=bf16; }
python=${PYTHON:-python3}
work=target/bench/train
mkdir -p "$work"

if [ -z "${ALMR_TRAIN:-}" ]; then
  cargo build --release --quiet -p almr -p almr-trainer
  ALMR_TRAIN=target/release/almr-train
fi
almr=target/release/almr
[ -x "$almr" ] || cargo build --release --quiet -p almr
if [ ! -f "$work/build/manifest.json" ]; then
  "$almr" build pipelines/tokenize_only.toml --out "$work/build" --json >/dev/null
fi
samples=$(( steps * micro ))
"$almr" mix "$work/build" --name "s$seq" --almr 0.5 --seq-len "$seq" --samples "$samples" --force --json >/dev/null

run="$work/run-$config-$device-$dtype"
rm -rf "$run"
"$ALMR_TRAIN" train --mix "$work/build/mix/s$seq" --out "$run" --config "$config" \
  --steps "$steps" --micro-batch "$micro" --device "$device" --compute-dtype "$dtype" \
  --eval-samples 0 >/dev/null
"$python" - "$run/metrics.jsonl" "$micro" "$seq" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][3:]
tps = statistics.median(r["tokens_per_s"] for r in rows)
print(f"almr-train: {tps:,.0f} tokens/s (median of {len(rows)} steps; batch {sys.argv[2]} x {sys.argv[3]})")
PY
"$python" scripts/bench_train_torch.py --config "$config" --micro-batch "$micro" --seq-len "$seq" \
  --steps "$steps" --device "$device" --dtype "$dtype"
