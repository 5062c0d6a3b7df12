#!/usr/bin/env bash
# Training throughput of almr-train beside PyTorch, same model, batch and
# sequence length, on one device.
#
#   scripts/bench_train.sh [--device cpu|cuda] [--config tiny] [--micro-batch 8]
#                          [--seq-len 128] [--steps 20] [--dtype f32|bf16] [--runs 1]
#
# Builds the fixture shards and a mix with the release `almr`, trains
# `--steps` steps with `almr-train` (tokens/s: median over the steps after the
# first 3, from metrics.jsonl; peak RSS and the memory estimate from
# memory.jsonl), then runs scripts/bench_train_torch.py with the same settings
# (`--steps` − 3 timed steps after 3 untimed; peak RSS from getrusage). With
# --runs R the two alternate R times and the medians are printed, with a
# Markdown row for docs/benchmarks.md. PYTHON (default: python3) must have
# torch. ALMR_TRAIN may name a prebuilt almr-train (e.g. the CUDA build from
# scripts/build_cuda.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cpu config=tiny micro=8 seq=128 steps=20 dtype="" runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --micro-batch) micro=$2; shift 2 ;;
    --seq-len) seq=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$dtype" ] || { [ "$device" = cpu ] && dtype=f32 || dtype=bf16; }
python=${PYTHON:-python3}
work=target/bench/train
mkdir -p "$work"
rm -f "$work/runs.jsonl"

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

# --runs R: almr-train and PyTorch alternate R times; medians over the runs.
for r in $(seq "$runs"); do
  run="$work/run-$config-$device-$dtype"
  rm -rf "$run"
  "$ALMR_TRAIN" train --mix "$work/build/mix/s$seq" --out "$run" --config "$config" \
    --steps "$steps" --micro-batch "$micro" --device "$device" --compute-dtype "$dtype" \
    --eval-samples 0 --save-every 0 >/dev/null 2>"$work/almr.err"
  "$python" - "$run" >>"$work/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")][3:]
mem = [json.loads(l) for l in open(sys.argv[1] + "/memory.jsonl")][-1]
print(json.dumps({"program": "almr-train", "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows),
                  "peak_rss_gib": (mem["peak_rss_bytes"] or 0) / 2**30, "estimate_gib": mem["estimate_bytes"] / 2**30}))
PY
  "$python" scripts/bench_train_torch.py --config "$config" --micro-batch "$micro" --seq-len "$seq" \
    --steps $((steps - 3)) --device "$device" --dtype "$dtype" --json >>"$work/runs.jsonl"
done
"$python" - "$work/runs.jsonl" "$config" "$micro" "$seq" "$device" "$dtype" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
almr = [r for r in rows if r.get("program") == "almr-train"]
torch = [r for r in rows if "torch" in r]
med = lambda rs, k: statistics.median(r[k] for r in rs) if rs and all(r.get(k) for r in rs) else float("nan")
a_tps, t_tps = med(almr, "tokens_per_s"), med(torch, "tokens_per_s")
a_mem, t_mem = med(almr, "peak_rss_gib"), med(torch, "peak_rss_gib")
print(f"almr-train: {a_tps:,.0f} tokens/s, peak RSS {a_mem:.2f} GiB (estimate {med(almr, 'estimate_gib'):.2f} GiB)")
print(f"PyTorch:    {t_tps:,.0f} tokens/s, peak RSS {t_mem:.2f} GiB")
print(f"| {sys.argv[2]} | {sys.argv[5]}, {sys.argv[6]} | {sys.argv[3]} × {sys.argv[4]} | {a_tps:,.0f} | {t_tps:,.0f} | "
      f"{a_tps / t_tps:.2f} | {a_mem:.2f} GiB | {t_mem:.2f} GiB | {a_mem / t_mem:.2f} |")
print("tokens/s: median over runs of each run's median step; runs:", len(almr))
PY
