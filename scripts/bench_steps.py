#!/usr/bin/env python3
"""Cleaning-step overhead: `almr build` with every step vs tokenizing alone.

Uses the corpus of scripts/bench_corpus.py (run scripts/bench_tokenize.sh or
bench_corpus.py first), keeping each article once (repeats, ids `~rN`, are
dropped so that exact dedup has nothing to do and both runs tokenize the same
documents, bar those the filters reject). Runs both pipelines alternately,
--runs times per thread count, and prints median wall seconds, input MB/s and
the ratio full / tokenize-only.

    python3 scripts/bench_steps.py [--runs 5] [--threads 1,2]
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "bench", "steps")
ALMR = os.path.join(ROOT, "target", "release", "almr")


def unique_corpus():
    os.makedirs(BENCH, exist_ok=True)
    sizes = {}
    for lang in ("zh", "en"):
        src = os.path.join(ROOT, "target", "bench", "corpus", f"{lang}.jsonl")
        dst = os.path.join(BENCH, f"{lang}.jsonl")
        n = b = 0
        with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
            for line in f:
                d = json.loads(line)
                if "~r" in d["id"]:
                    continue
                out.write(line)
                n += 1
                b += len(d["text"].encode("utf-8"))
        sizes[lang] = (n, b)
    return sizes


def pipeline(name, steps_line):
    text = f"""output = "target/bench/steps/out-{name}"
{steps_line}
[tokenizer]
path = "fixtures/tokenizers/llama3/tokenizer.json"
eos = "<|end_of_text|>"
[[source]]
name = "zh"
language = "zh"
additional = true
paths = ["target/bench/steps/zh.jsonl"]
format = "jsonl"
id_field = "id"
[[source]]
name = "en"
language = "en"
additional = false
paths = ["target/bench/steps/en.jsonl"]
format = "jsonl"
id_field = "id"
"""
    path = os.path.join(BENCH, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def run(path, threads):
    t = time.perf_counter()
    out = subprocess.run([ALMR, "build", path, "--threads", str(threads), "--json"],
                         cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - t
    return wall, json.loads(out.stdout)["totals"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    sizes = unique_corpus()
    total_bytes = sum(b for _, b in sizes.values())
    pipes = {"tokenize_only": pipeline("tokenize_only", "steps = []"),
             "all_steps": pipeline("all_steps", "")}
    print(f"corpus: zh {sizes['zh'][0]} docs {sizes['zh'][1]/1e6:.2f} MB, "
          f"en {sizes['en'][0]} docs {sizes['en'][1]/1e6:.2f} MB (text bytes)")
    print("| threads | pipeline | median s | MB/s | kept docs | tokens |")
    print("|---:|---|---:|---:|---:|---:|")
    for threads in [int(t) for t in args.threads.split(",")]:
        times = {k: [] for k in pipes}
        totals = {}
        for _ in range(args.runs):
            for k, p in pipes.items():
                wall, tot = run(p, threads)
                times[k].append(wall)
                totals[k] = tot
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in pipes:
            print(f"| {threads} | {k} | {med[k]:.2f} | {total_bytes/1e6/med[k]:.2f} | "
                  f"{totals[k]['kept']} | {totals[k]['tokens']} |")
        print(f"| {threads} | ratio all_steps / tokenize_only | {med['all_steps']/med['tokenize_only']:.2f} | | | |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
