#!/usr/bin/env bash
# Renders the `almr stats --html` report of the default build in headless
# Chromium and writes a screenshot, to look at the charts the way a user does.
#
#   scripts/screenshot_stats.sh [OUT_DIR]     (default: target/stats-demo)
#
# Builds the fixtures with the embedded default pipeline, makes two mixes
# (ALMR 0.1 and 0.33), writes OUT_DIR/stats.html and OUT_DIR/stats.png.
# Needs Debian's chromium (`apt-get install chromium`). Honours
# CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/stats-demo}
command -v chromium >/dev/null || { echo "needs chromium: apt-get install chromium" >&2; exit 1; }
cargo build --release --quiet -p almr --bin almr
almr=${CARGO_TARGET_DIR:-target}/release/almr
$almr build pipelines/default.toml --out "$out/build" --json >/dev/null
$almr mix "$out/build" --name almr10 --almr 0.1 --seq-len 512 --tokens 1M --force >/dev/null
$almr mix "$out/build" --name almr33 --almr 0.33 --seq-len 512 --tokens 2M --force >/dev/null
$almr stats "$out/build" --html "$out/stats.html" >/dev/null
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Flags as for a sandboxed machine with no network. The
# window is as tall as the whole report.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1280,4300 \
  --screenshot="$(realpath "$out")/stats.png" "file://$(realpath "$out")/stats.html" 2>/dev/null
echo "wrote $out/stats.html and $out/stats.png"
