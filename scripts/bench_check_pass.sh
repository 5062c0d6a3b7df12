#!/usr/bin/env bash
# The cost of the integrity pass over compressed input (issue 13): `almr build`
# of a 100 MB gzip JSONL corpus (the fixtures' People's Daily articles, each
# copy numbered so none is a duplicate; steps = []) by two almr binaries,
# side by side with farm-bench.
# Usage: scripts/bench_check_pass.sh OLD_ALMR NEW_ALMR [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1"); new=$(realpath "$2"); runs=${3:-7}
dir=target/bench/check_pass
mkdir -p "$dir"
python3 - "$dir" <<'PY'
import gzip, json, glob, sys
d = sys.argv[1]
texts = [json.loads(l)["text"] for f in sorted(glob.glob("fixtures/zh/*.jsonl.gz")) for l in gzip.open(f, "rt")]
n = size = 0
for k in range(4):
    with gzip.open(f"{d}/part{k}.jsonl.gz", "wt", compresslevel=6) as g:
        while size < (k + 1) * 25_000_000:
            t = f"{n} " + texts[n % len(texts)]
            g.write(json.dumps({"id": f"d{n}", "text": t}, ensure_ascii=False) + "\n")
            size += len(t.encode()); n += 1
PY
cat > "$dir/p.toml" <<TOML
output = "$dir/out"
steps = []
[tokenizer]
path = "fixtures/tokenizers/llama3/tokenizer.json"
eos = "<|end_of_text|>"
[[source]]
name = "zh"
language = "zh"
additional = true
format = "jsonl"
id_field = "id"
paths = ["$dir/part*.jsonl.gz"]
TOML
farm-bench -n "$runs" --timeout 600 \
  --vs "$old build $dir/p.toml --out $dir/out_old --threads 2" \
  -- "$new" build "$dir/p.toml" --out "$dir/out_new" --threads 2
