#!/usr/bin/env python3
"""Times two `almr` binaries side by side on the same builds: a refactor check.

    python3 scripts/bench_chain.py OLD_ALMR NEW_ALMR [--runs 7] [--threads 2]

Makes two corpora from the fixtures under target/bench/chain/ and a pipeline
for each:

* tokenize: 57,520 JSONL documents (110 MB; the People's Daily and near-dup
  fixtures, repeated 40 times), `steps = []`: reading, tokenizing, shards;
* all-steps: 4,200 People's Daily articles, each repeated 20 times with a
  different last line, all five steps: near_dedup drops 95 % of the
  documents after they were written, so the shards are rewritten (the late
  drops of the build driver).

Runs OLD and NEW in turn (OLD NEW OLD NEW ...), after one warm-up each, and
prints the median wall seconds of each and the median of the per-pair ratios
NEW/OLD. The shards of the two must be byte-identical; it checks.
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "bench" / "chain"
TOKENIZER = ROOT / "fixtures/tokenizers/llama3/tokenizer.json"


def texts(path):
    with gzip.open(ROOT / path, "rt") as f:
        return [json.loads(line)["text"] for line in f]


def corpora():
    WORK.mkdir(parents=True, exist_ok=True)
    zh = texts("fixtures/zh/peoples_daily_1998_01.jsonl.gz")
    near_zh = texts("fixtures/neardup/zh.jsonl.gz")
    near_en = texts("fixtures/neardup/en.jsonl.gz")
    with open(WORK / "tokenize.jsonl", "w") as f:
        n = 0
        for _ in range(40):
            for t in zh + near_zh + near_en:
                f.write(json.dumps({"id": f"d{n}", "text": t}, ensure_ascii=False) + "\n")
                n += 1
    with open(WORK / "near.jsonl", "w") as f:
        n = 0
        for r in range(20):
            for t in zh:
                doc = {"id": f"d{n}", "text": f"{t}\n副本{r}号。"}
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
                n += 1
    steps = {
        "tokenize": ("tokenize.jsonl", "steps = []"),
        "all-steps": (
            "near.jsonl",
            'steps = ["normalize", "language", "filter", "exact_dedup", "near_dedup"]',
        ),
    }
    for name, (data, line) in steps.items():
        (WORK / f"{name}.toml").write_text(
            f'output = "unused"\n{line}\n[tokenizer]\npath = "{TOKENIZER}"\n'
            f'eos = "<|end_of_text|>"\n[[source]]\nname = "s"\nlanguage = "zh"\n'
            f'additional = true\npaths = ["{WORK / data}"]\nformat = "jsonl"\n'
            f'id_field = "id"\nmax_shard_tokens = 200000\n'
        )
    return list(steps)


def run(binary, pipeline, out, threads):
    cmd = [binary, "build", str(pipeline), "--out", str(out), "--threads", str(threads), "--json"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def same_shards(a, b):
    for f in sorted((a / "shards").rglob("*")):
        if f.is_file() and f.read_bytes() != (b / f.relative_to(a)).read_bytes():
            return False
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; runs {a.runs}; --threads {a.threads}")
    for name in corpora():
        pipeline = WORK / f"{name}.toml"
        outs = {k: WORK / f"out-{name}-{k}" for k in ("old", "new")}
        for k in ("old", "new"):
            run(getattr(a, k), pipeline, outs[k], a.threads)  # warm-up
        times = {"old": [], "new": []}
        for _ in range(a.runs):
            for k in ("old", "new"):
                times[k].append(run(getattr(a, k), pipeline, outs[k], a.threads))
        ratios = [n / o for n, o in zip(times["new"], times["old"])]
        same = same_shards(outs["old"], outs["new"])
        print(
            f"{name:10} old {statistics.median(times['old']):.3f} s  "
            f"new {statistics.median(times['new']):.3f} s  "
            f"new/old {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f})  shards identical: {same}"
        )
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
