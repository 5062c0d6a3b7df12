#!/usr/bin/env bash
# Renders `almr-train report --html` of an ALMR × learning-rate sweep in
# headless Chromium and writes a screenshot, to look at the report the way a
# user choosing the setting of the big run does.
#
#   scripts/screenshot_sweep.sh [SWEEP] [OUT_DIR]   (default OUT_DIR: target/sweep-demo)
#
# With SWEEP (a sweep directory, as `almr-train sweep run` writes it, or any
# directory with a cells.jsonl), reports it. Without, builds a demo sweep in
# OUT_DIR/sweep: 5 × 5 cells (ALMR 0.1 … 0.9, LR 1e-4 … 1e-2) whose losses
# are planted from the law of docs/sweep.md (η* moved to a tiny model's
# range) with 1 % noise and one cell marked diverged, each naming a real run
# of the tiny preset trained on the fixture build at its ALMR and LR, then
# `almr-train sweep fit`. Writes OUT_DIR/report.html and OUT_DIR/report.png.
# Needs Debian's chromium (`apt-get install chromium`) and python3. The
# demo's 25 runs take about 6 minutes on 2 cores; they are kept and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
sweep=${1:-}
out=${2:-target/sweep-demo}
steps=16
command -v chromium >/dev/null || { echo "needs chromium: apt-get install chromium" >&2; exit 1; }
cargo build --release --quiet -p almr -p almr-trainer
# A copy, so that a build of another checkout into the same CARGO_TARGET_DIR
# cannot swap the binaries while the runs train.
bin=$out/bin
mkdir -p "$bin"
cp "${CARGO_TARGET_DIR:-target}"/release/{almr,almr-train} "$bin/"

# The demo: a mix per ALMR, a run per cell, the planted cells file, the fit.
demo() {
  local s=$out/sweep
  mkdir -p "$s"
  [ -e "$out/build/manifest.json" ] ||
    "$bin/almr" build pipelines/tokenize_only.toml --out "$out/build" --json >/dev/null
  for almr in 0.1 0.3 0.5 0.7 0.9; do
    name=almr${almr#0.}0
    [ -e "$out/build/mix/$name.json" ] ||
      "$bin/almr" mix "$out/build" --name "$name" --almr "$almr" --seq-len 128 \
        --samples 600 --valid-share 0.05 --seed 1 >/dev/null
    for lr in 1e-4 3.16e-4 1e-3 3.16e-3 1e-2; do
      run=$s/cells/r$almr-lr$lr/steps-$steps
      [ -e "$run/final/config.json" ] && continue
      rm -rf "$run"
      echo "training $run" >&2
      "$bin/almr-train" train --mix "$out/build/mix/$name" --out "$run" --config tiny \
        --steps $steps --micro-batch 2 --lr $lr --warmup 2 --eval-every 4 \
        --eval-samples 16 >/dev/null
    done
  done
  echo '{"demo": "cells planted from the law of docs/sweep.md; runs of the tiny preset"}' >"$s/sweep.json"
  STEPS=$steps python3 - >"$s/cells.jsonl" <<'EOF'
import json, math, os, random
random.seed(0)
def law(E, C, g, k, a, b, s, r, lr):
    return E + C * (s + 1e-3) ** -g + k * (math.log(lr) - (a + b * r)) ** 2
zh = (1.8, 0.25, 0.5, 0.06, math.log(3e-3), -1.0)
en = (1.9, 0.3, 0.6, 0.05, math.log(2e-3), -0.5)
steps = int(os.environ["STEPS"])
print(json.dumps({"base_en_loss": 2.29}))
for r in (0.1, 0.3, 0.5, 0.7, 0.9):
    for lr in ("1e-4", "3.16e-4", "1e-3", "3.16e-3", "1e-2"):
        eta = float(lr)
        noisy = lambda p, s: round(law(*p, s, r, eta) * (1 + 0.01 * random.gauss(0, 1)), 4)
        cell = {"almr": r, "lr": eta, "tokens": 1e9, "steps": steps,
                "run": f"cells/r{r}-lr{lr}/steps-{steps}",
                "val_loss": {"zh": noisy(zh, r), "en": noisy(en, 1 - r)}}
        if (r, lr) == (0.9, "1e-2"):
            cell.update(val_loss={"zh": None, "en": None}, diverged=True)
        print(json.dumps(cell))
EOF
  "$bin/almr-train" sweep fit "$s/cells.jsonl" >/dev/null
  sweep=$s
}

[ -n "$sweep" ] || demo
"$bin/almr-train" report "$sweep" --html "$out/report.html"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Flags as for a sandboxed machine with no network (see docs/mixing.md).
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1360,4600 \
  --screenshot="$(realpath "$out")/report.png" "file://$(realpath "$out")/report.html" 2>/dev/null
echo "wrote $out/report.html and $out/report.png"
