#!/usr/bin/env bash
# Fault trials: builds the release binaries, then SIGKILLs `almr build`,
# `almr mix` and `almr-train train` at random moments and compares what is
# left, and every rerun, with uninterrupted runs (scripts/fault_trials.py).
# Usage: scripts/fault_trials.sh [--kills N] [--seed S] [--work DIR] [--only build|mix|train]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins
exec python3 scripts/fault_trials.py "$@"
