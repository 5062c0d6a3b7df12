#!/usr/bin/env bash
# almr's near-dedup throughput and recall on the datatrove benchmark corpus
# (target/bench/neardup, written by `scripts/make_neardup.py --bench`):
# median of RUNS runs per thread count of examples/near_dedup.rs, which times
# reading the JSON lines + signatures + LSH + clustering (no tokenizing).
#
#   scripts/bench_near_dedup.sh [RUNS]      # default 5
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
corpus=target/bench/neardup
[ -f "$corpus/truth.json" ] || python3 scripts/make_neardup.py --bench
cargo build --release --quiet --example near_dedup
for threads in 1 "$(nproc)"; do
  for _ in $(seq "$runs"); do
    target/release/examples/near_dedup --threads "$threads" "$corpus/zh.jsonl" "$corpus/en.jsonl"
  done | python3 -c '
import statistics, sys
rows = [line.split() for line in sys.stdin]
med = lambda k: statistics.median(float(r[k]) for r in rows)
r = rows[0]
print(f"threads {r[5]}: {r[1]} docs, {r[3]} MB, median {med(7):.3f} s, {med(9):.0f} docs/s, {med(11):.2f} MB/s ({len(rows)} runs)")'
done
target/release/examples/near_dedup --threads "$(nproc)" --truth "$corpus/truth.json" "$corpus/zh.jsonl" "$corpus/en.jsonl" | tail -n +2
