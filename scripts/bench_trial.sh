#!/usr/bin/env bash
# Times the ways of trying a pipeline (docs/cleaning.md, "Trying a
# pipeline") on one 10,000-record source: a full build, `--dry-run`,
# `--limit 1000` (first and sampled) and `--limit 1000 --dry-run`.
#
# The source is target/bench/trial/zh.jsonl: the 650 Chinese documents of
# fixtures/ (People's Daily and fixtures/neardup/zh.jsonl.gz) repeated in
# order to 10,000 records; a repeat gets the id `<id>~<N>` and one more
# line, `（副本 N）`, so exact dedup passes it and near dedup drops it.
# Every step of the default chain runs. Prints the median of --runs runs
# (default 3) of each command, wall clock, whole process.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
[[ "${1:-}" == "--runs" ]] && runs="$2"
cargo build --release --quiet
almr="${CARGO_TARGET_DIR:-target}/release/almr"
dir=target/bench/trial
mkdir -p "$dir"
python3 - "$dir" <<'PY'
import gzip, json, sys
out = sys.argv[1]
docs = []
for path in ["fixtures/zh/peoples_daily_1998_01.jsonl.gz", "fixtures/neardup/zh.jsonl.gz"]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs += [json.loads(line) for line in f if line.strip()]
with open(f"{out}/zh.jsonl", "w", encoding="utf-8") as f:
    for i in range(10_000):
        d, copy = docs[i % len(docs)], i // len(docs)
        text = d["text"] + (f"\n（副本 {copy}）" if copy else "")
        rid = d["id"] + (f"~{copy}" if copy else "")
        f.write(json.dumps({"id": rid, "text": text}, ensure_ascii=False) + "\n")
with open(f"{out}/trial.toml", "w") as f:
    f.write(f"""output = "{out}/out"
[tokenizer]
path = "fixtures/tokenizers/llama3/tokenizer.json"
eos = "<|end_of_text|>"
[[source]]
name = "zh"
language = "zh"
additional = true
paths = ["{out}/zh.jsonl"]
format = "jsonl"
id_field = "id"
""")
print(f"{out}/zh.jsonl: 10000 records from {len(docs)} documents")
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_it() {
  local label="$1"; shift
  local times=()
  for _ in $(seq "$runs"); do
    rm -rf "$dir/out"
    local t0 t1
    t0=$(date +%s.%N)
    "$almr" build "$dir/trial.toml" --json "$@" > "$dir/last.json"
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%-42s %6.2f s   (runs: %s)\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
}
time_it "build (all 10,000)"
time_it "build --dry-run" --dry-run
time_it "build --limit 1000" --limit 1000
time_it "build --limit 1000 --sample-seed 1" --limit 1000 --sample-seed 1
time_it "build --limit 1000 --dry-run" --limit 1000 --dry-run
