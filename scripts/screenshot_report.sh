#!/usr/bin/env bash
# Trains the tiny preset on two mixes of the fixture build, at ALMR 0.2 and
# 0.6, renders `almr-train report --html` of both runs side by side in
# headless Chromium and writes a screenshot, to look at the curves the way a
# user does.
#
#   scripts/screenshot_report.sh [OUT_DIR] [STEPS]   (default: target/report-demo, 48)
#
# Needs Debian's chromium (`apt-get install chromium`). Writes the runs to
# OUT_DIR/runs/, OUT_DIR/report.html and OUT_DIR/report.png. A few minutes
# on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/report-demo}
steps=${2:-48}
command -v chromium >/dev/null || { echo "needs chromium: apt-get install chromium" >&2; exit 1; }
cargo build --release --quiet -p almr -p almr-trainer
# A copy, so that a build of another checkout into the same CARGO_TARGET_DIR
# cannot swap the binaries while the runs train.
bin=$out/bin
mkdir -p "$bin"
cp "${CARGO_TARGET_DIR:-target}"/release/{almr,almr-train} "$bin/"
[ -e "$out/build/manifest.json" ] ||
  "$bin/almr" build pipelines/tokenize_only.toml --out "$out/build" --json >/dev/null
rm -rf "$out/runs"
for almr in 0.2 0.6; do
  name=almr${almr#0.}0
  [ -e "$out/build/mix/$name.json" ] ||
    "$bin/almr" mix "$out/build" --name "$name" --almr "$almr" --seq-len 128 \
      --samples 1200 --valid-share 0.05 --seed 1 >/dev/null
  "$bin/almr-train" train --mix "$out/build/mix/$name" --out "$out/runs/tiny-$name" \
    --config tiny --steps "$steps" --micro-batch 8 --lr 2e-3 --warmup 6 \
    --eval-every 6 --eval-samples 32 >/dev/null
done
"$bin/almr-train" report "$out/runs/tiny-almr20" "$out/runs/tiny-almr60" --html "$out/report.html"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Flags as for a sandboxed machine with no network (see docs/mixing.md).
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1360,2450 \
  --screenshot="$(realpath "$out")/report.png" "file://$(realpath "$out")/report.html" 2>/dev/null
echo "wrote $out/report.html and $out/report.png"
