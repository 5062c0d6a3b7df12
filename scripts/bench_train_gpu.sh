#!/usr/bin/env bash
# almr-train beside PyTorch eager on one CUDA GPU: the same model, batch and
# sequence length, bf16 autocast over f32 master weights in both. Runs on the
# GPU machine, which has PyTorch and the NVIDIA driver but no Rust.
#
#   scripts/bench_train_gpu.sh BIN BUILD OUTDIR
#
# BIN is the CUDA almr-train (scripts/build_cuda.sh, target/cuda/dist/), BUILD
# a build with the mixes s512, s1024 and s2048 (`almr mix BUILD --name s512
# --almr 0.5 --seq-len 512 --samples 400`, and so on). For each case it trains
# with almr-train (tokens/s: median of the steps after the first 3, from
# metrics.jsonl) and runs scripts/bench_train_torch.py with the same settings.
# Peak GPU memory is sampled with nvidia-smi every 100 ms for both programs
# (memory.used of the whole GPU, CUDA context included), beside PyTorch's own
# max_memory_allocated. Before the benchmark, the first 3 steps of `tiny` in
# f32 on CUDA and on the CPU are compared: the losses must agree, which checks
# the CUDA path of the fused loss head and the attention softmax.
# Results: OUTDIR/results.jsonl (one object per program and case) and
# OUTDIR/log.txt.
set -uo pipefail
BIN=$1 BUILD=$2 OUT=$3
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
WORK=$(mktemp -d)
exec > >(tee "$OUT/log.txt") 2>&1

# PyTorch's CUDA 13 libraries serve the binary (DEVELOPERS.md).
CUDA_LIBS=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
export LD_LIBRARY_PATH=$CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ $BIN == *.gz ]]; then
  gunzip -c "$BIN" >"$WORK/almr-train" && chmod +x "$WORK/almr-train"
  BIN=$WORK/almr-train
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
nproc

# GPU memory.used, sampled until the end.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$WORK/smi" &
SMI=$!
trap 'kill $SMI 2>/dev/null; rm -rf "$WORK"' EXIT

# The peak of memory.used (MiB) since line $1 of the sampler's output.
peak_since() { tail -n +"$1" "$WORK/smi" | sort -n | tail -1; }
lines() { wc -l <"$WORK/smi"; }

echo "== CUDA against CPU, tiny f32, 3 steps"
for dev in cuda cpu; do
  "$BIN" train --mix "$BUILD/mix/s512" --out "$WORK/check-$dev" --config tiny --steps 3 \
    --micro-batch 2 --device "$dev" --compute-dtype f32 --eval-samples 0 --save-dtype f32 \
    >/dev/null 2>"$WORK/check-$dev.err" || { cat "$WORK/check-$dev.err"; exit 1; }
done
python3 - "$WORK/check-cuda/metrics.jsonl" "$WORK/check-cpu/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
worst = max(abs(x - y) / abs(y) for x, y in zip(a, b))
print("cuda", a, "\ncpu ", b, f"\nlargest relative difference {worst:.2e}")
sys.exit(0 if worst < 1e-4 else 1)
PY
[ $? = 0 ] || echo "FAIL: the CUDA and CPU losses differ"

bench() { # config micro seq steps
  local config=$1 micro=$2 seq=$3 steps=$4 run="$WORK/run-$1-$2x$3" start
  echo "== $config ${micro}x$seq bf16"
  start=$(lines)
  if timeout 150 "$BIN" train --mix "$BUILD/mix/s$seq" --out "$run" --config "$config" \
      --steps "$steps" --micro-batch "$micro" --device cuda --compute-dtype bf16 \
      --eval-samples 0 --save-every 0 >/dev/null 2>"$run.err"; then
    python3 - "$run/metrics.jsonl" "$config" "$micro" "$seq" "$(peak_since "$start")" \
      "$(cat "$run/memory.jsonl" 2>/dev/null | tail -1)" <<'PY' | tee -a "$OUT/results.jsonl"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][3:]
mem = json.loads(sys.argv[6]) if sys.argv[6] else {}
print(json.dumps({"program": "almr-train", "config": sys.argv[2], "micro_batch": int(sys.argv[3]),
    "seq_len": int(sys.argv[4]), "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows), 1),
    "steps_timed": len(rows), "smi_peak_mib": int(sys.argv[5]),
    "estimate_gib": round(mem.get("estimate_bytes", 0) / 2**30, 3), "final_loss": rows[-1]["loss"]}))
PY
  else
    echo "almr-train failed:"; tail -5 "$run.err"
  fi
  grep -h "memory" "$run.err" || true
  sleep 1
  start=$(lines)
  local t
  if t=$(timeout 150 python3 scripts/bench_train_torch.py --config "$config" --micro-batch "$micro" \
      --seq-len "$seq" --steps $((steps - 3)) --device cuda --dtype bf16 --json); then
    python3 - "$t" "$(peak_since "$start")" <<'PY' | tee -a "$OUT/results.jsonl"
import json, sys
r = json.loads(sys.argv[1])
print(json.dumps({"program": "pytorch-eager", "config": r["config"], "micro_batch": r["micro_batch"],
    "seq_len": r["seq_len"], "tokens_per_s": r["tokens_per_s"], "steps_timed": r["timed_steps"],
    "smi_peak_mib": int(sys.argv[2]), "max_allocated_gib": r["peak_memory_gib"], "mfu": r["mfu"],
    "torch": r["torch"], "final_loss": r["final_loss"]}))
PY
  else
    echo "pytorch failed: $t"
  fi
  sleep 1
}

bench tiny 8 512 30
bench proxy-125m 4 512 30
bench proxy-125m 16 1024 25
bench proxy-1b 2 1024 15
bench proxy-1b 4 2048 15
echo "== done"
