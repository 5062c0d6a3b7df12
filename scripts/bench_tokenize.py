#!/usr/bin/env python3
"""Throughput of `almr build` against Python `tokenizers` on the same text.

Run from the repository root after scripts/bench_corpus.py (scripts/bench_tokenize.sh
does all of it). For each thread count T:

  almr  `almr build target/bench/bench.toml --out target/bench/out --threads T --json`
        timed as a whole process (wall clock): reading the JSON lines, hashing
        inputs, tokenizing, writing .bin/.idx/.docs.parquet, hashing outputs,
        the manifest. The output directory is removed before each run (untimed).
  almr fixed cost: the same command on a one-document pipeline
        (target/bench/tiny.toml): start-up, loading, copying and hashing
        tokenizer.json, the manifest. Subtract it to estimate almr's
        per-byte work.
  HF    in worker processes (one per thread count and method) started with
        RAYON_NUM_THREADS=T (and RAYON_RS_NUM_THREADS=T,
        TOKENIZERS_PARALLELISM=true), the same texts already in memory as a
        list of str, timed around
        `Tokenizer.encode_batch(texts, add_special_tokens=False)` only;
        optionally also `encode_batch_fast` (no offsets; what almr calls).
        Each run uses a freshly loaded Tokenizer (untimed) so that its BPE
        word cache starts empty, as in every almr process.

Runs are interleaved (almr, almr fixed, HF, HF fast, almr, ...) so that drift
on a noisy machine hits all of them alike; one untimed warm-up of each comes
first. Before each round the script waits (up to --max-wait s) until the
CPUs are --min-idle idle over one second, so that other jobs on a shared
machine disturb fewer runs; rounds run without that are listed.
Reports the median (and min/max) over --runs runs, MB/s of input text (UTF-8
bytes of the text fields, 10^6 bytes per MB), tokens/s (without almr's EOS),
CPU seconds (user+sys) and the almr/HF throughput ratio (>1: almr is faster).
Checks that almr's manifest totals.tokens minus one EOS per document equals
HF's sum of len(ids).

Writes target/bench/results.json and prints Markdown tables.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "bench")
TOKENIZER = os.path.join(ROOT, "fixtures", "tokenizers", "llama3", "tokenizer.json")


def load_texts(summary):
    texts = []
    for lang in ("zh", "en"):  # pipeline order
        with open(os.path.join(ROOT, summary[lang]["path"]), encoding="utf-8") as f:
            texts.extend(json.loads(line)["text"] for line in f)
    return texts


# ------------------------------------------------------------------ worker

def worker(method):
    """HF side, in its own process (one per thread count and method) so that
    the rayon pool size comes from the environment it was started with and
    one method's leftovers (heap, caches) do not slow down the other. Each
    "run" line on stdin gets a fresh Tokenizer (loaded untimed, so that its
    BPE word cache starts empty, as in each almr process) and answers one JSON
    line with the time of the encode call alone."""
    from tokenizers import Tokenizer

    summary = json.load(open(os.path.join(BENCH, "corpus", "summary.json")))
    texts = load_texts(summary)
    # warm-up: rayon pool, allocator, page cache
    getattr(Tokenizer.from_file(TOKENIZER), method)(texts, add_special_tokens=False)
    # OS threads after the warm-up: the main thread plus rayon's pool, which
    # shows that RAYON_NUM_THREADS took effect.
    nthreads = len(os.listdir("/proc/self/task"))
    print(json.dumps({"ready": True, "documents": len(texts), "os_threads": nthreads}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        tok = Tokenizer.from_file(TOKENIZER)
        fn = getattr(tok, method)
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        encs = fn(texts, add_special_tokens=False)
        t1, c1 = time.perf_counter(), time.process_time()
        tokens = sum(len(e.ids) for e in encs)
        del encs, fn, tok
        print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0, "tokens": tokens}), flush=True)


class Worker:
    def __init__(self, threads, method):
        env = dict(os.environ)
        env["RAYON_NUM_THREADS"] = str(threads)
        env["RAYON_RS_NUM_THREADS"] = str(threads)
        env["TOKENIZERS_PARALLELISM"] = "true"
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", method],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.ready = json.loads(self.p.stdout.readline())

    def run(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit("HF worker died")
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


# -------------------------------------------------------------------- almr

TINY_TOML = """\
# One short document: what an almr build costs besides the text itself.
output = "target/bench/tiny-out"
steps = []

[tokenizer]
path = "fixtures/tokenizers/llama3/tokenizer.json"
eos = "<|end_of_text|>"

[[source]]
name = "tiny"
language = "en"
additional = false
paths = ["target/bench/tiny.jsonl"]
format = "jsonl"
id_field = "id"
"""


def write_tiny():
    with open(os.path.join(BENCH, "tiny.jsonl"), "w") as f:
        f.write('{"id": "tiny-1", "text": "Hello world."}\n')
    with open(os.path.join(BENCH, "tiny.toml"), "w") as f:
        f.write(TINY_TOML)


def run_almr(almr, threads, name="bench"):
    out = os.path.join("target", "bench", "out" if name == "bench" else f"{name}-out")
    shutil.rmtree(os.path.join(ROOT, out), ignore_errors=True)
    cmd = [almr, "build", os.path.join("target", "bench", f"{name}.toml"),
           "--out", out, "--threads", str(threads), "--json"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"almr failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    m = json.loads(p.stdout)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"wall": t1 - t0, "cpu": cpu, "totals": m["totals"]}


# ------------------------------------------------------------------ noise

def cpu_idle(seconds=1.0):
    """Fraction of all CPUs idle over the next `seconds` (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, total
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def wait_idle(min_idle, max_wait):
    """Waits until the machine is at least `min_idle` idle over one second, at
    most `max_wait` seconds; returns the seconds waited, or None on timeout."""
    start = time.monotonic()
    while True:
        if cpu_idle() >= min_idle:
            return time.monotonic() - start
        if time.monotonic() - start > max_wait:
            return None


# ------------------------------------------------------------------ report

def machine_info():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_start": os.getloadavg(),
            "ram_gib": round(mem_kb / 2**20, 1), "kernel": platform.release()}


def versions(almr):
    import tokenizers

    def sh(*cmd):
        try:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    crate = ""
    i = lock.find('name = "tokenizers"\nversion = "')
    if i >= 0:
        crate = lock[i:].split('"')[3]
    return {
        "almr_commit": sh("git", "rev-parse", "--short", "HEAD"),
        # uncommitted changes under src/ (and Cargo.*) when the benchmark ran
        "almr_dirty": sh("git", "status", "--porcelain", "--", "src", "Cargo.toml",
                         "Cargo.lock").splitlines(),
        "almr": sh(almr, "--version"),
        "tokenizers_crate_in_almr": crate,
        "python_tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
        "rustc": sh("rustc", "--version"),
    }


def stats(runs, key):
    xs = [r[key] for r in runs]
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "all": xs}


def table(res, nbytes, tokens):
    rows = [
        "| | median wall s (min–max) | MB/s | tokens/s | CPU s | almr/HF |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    almr = res["almr"]["wall"]["median"]
    for name, label in (("almr", "almr build (whole build)"),
                        ("almr_fixed", "almr fixed cost (1-doc build)"),
                        ("encode_batch", "HF encode_batch"),
                        ("encode_batch_fast", "HF encode_batch_fast")):
        if name not in res:
            continue
        w = res[name]["wall"]
        cpu = res[name]["cpu"]["median"]
        ratio = "—" if name.startswith("almr") else f"{w['median'] / almr:.2f}"
        if name == "almr_fixed":
            rows.append(f"| {label} | {w['median']:.2f} ({w['min']:.2f}–{w['max']:.2f}) | | | "
                        f"{cpu:.2f} | |")
            continue
        rows.append(f"| {label} | {w['median']:.2f} ({w['min']:.2f}–{w['max']:.2f}) | "
                    f"{nbytes / w['median'] / 1e6:.2f} | {tokens / w['median'] / 1e6:.2f} M | "
                    f"{cpu:.2f} | {ratio} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="timed runs per tool and thread count")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default: 1 and nproc)")
    ap.add_argument("--almr", default=os.path.join(ROOT, "target", "release", "almr"))
    ap.add_argument("--no-fast", action="store_true", help="skip HF encode_batch_fast")
    ap.add_argument("--min-idle", type=float, default=0.9,
                    help="before each round of runs, wait until the CPUs are this idle "
                         "over 1 s (default 0.9; 0 to never wait)")
    ap.add_argument("--max-wait", type=float, default=300,
                    help="give up waiting for an idle machine after this many seconds")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)

    # Run a private copy: a concurrent `cargo build --release` must not swap
    # the binary in the middle of the benchmark.
    almr_copy = os.path.join(BENCH, "bin", "almr")
    os.makedirs(os.path.dirname(almr_copy), exist_ok=True)
    shutil.copy2(args.almr, almr_copy)
    args.almr = almr_copy

    summary = json.load(open(os.path.join(BENCH, "corpus", "summary.json")))
    nbytes = summary["text_bytes"]
    ndocs = summary["documents"]
    threads = ([int(t) for t in args.threads.split(",")] if args.threads
               else sorted({1, os.cpu_count()}))
    methods = ["encode_batch"] + ([] if args.no_fast else ["encode_batch_fast"])
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(), "versions": versions(args.almr),
            "corpus": summary, "runs": args.runs, "threads": {}}
    print(json.dumps({k: info[k] for k in ("date", "machine", "versions")}, indent=2),
          file=sys.stderr)

    write_tiny()
    problems = []
    noisy_rounds = []  # rounds run although the machine was not idle
    for t in threads:
        print(f"== threads {t}: starting HF workers (load texts, warm up)", file=sys.stderr)
        workers = {m: Worker(t, m) for m in methods}
        for m, w in workers.items():
            if w.ready["documents"] != ndocs:
                problems.append(f"HF read {w.ready['documents']} docs, corpus has {ndocs}")
            print(f"  HF {m} worker has {w.ready['os_threads']} OS threads "
                  f"(main + rayon pool of {t} expected)", file=sys.stderr)
        run_almr(args.almr, t)  # warm-up
        runs = {"almr": [], "almr_fixed": []} | {m: [] for m in methods}
        for i in range(args.runs):
            if args.min_idle > 0:
                waited = wait_idle(args.min_idle, args.max_wait)
                if waited is None:
                    noisy_rounds.append(f"T={t} run {i + 1}")
                    print(f"  machine still busy after {args.max_wait:.0f} s; running anyway",
                          file=sys.stderr)
            runs["almr"].append(run_almr(args.almr, t))
            runs["almr_fixed"].append(run_almr(args.almr, t, "tiny"))
            for m in methods:
                runs[m].append(workers[m].run())
            line = "  ".join(f"{k} {v[-1]['wall']:.2f}s/{v[-1]['cpu']:.2f}cpu"
                             for k, v in runs.items())
            print(f"  run {i + 1}/{args.runs}: {line}", file=sys.stderr)
        os_threads = workers["encode_batch"].ready["os_threads"]
        for w in workers.values():
            w.close()

        totals = runs["almr"][0]["totals"]
        if any(r["totals"] != totals for r in runs["almr"]):
            problems.append(f"T={t}: almr totals differ between runs")
        almr_tokens = totals["tokens"] - totals["kept"]  # one EOS per document
        if totals["kept"] != ndocs:
            problems.append(f"T={t}: almr kept {totals['kept']} docs, corpus has {ndocs}")
        if totals["text_bytes"] != nbytes:
            problems.append(f"T={t}: almr text_bytes {totals['text_bytes']} != {nbytes}")
        for m in methods:
            for r in runs[m]:
                if r["tokens"] != almr_tokens:
                    problems.append(f"T={t}: HF {m} {r['tokens']} tokens != almr {almr_tokens}")
                    break
        res = {k: {"wall": stats(v, "wall"), "cpu": stats(v, "cpu")} for k, v in runs.items()}
        res["hf_worker_os_threads"] = os_threads
        res["almr_totals"] = totals
        res["tokens_without_eos"] = almr_tokens
        res["hf_tokens"] = runs["encode_batch"][0]["tokens"]
        info["threads"][str(t)] = res

    info["machine"]["loadavg_end"] = os.getloadavg()
    info["problems"] = problems
    info["noisy_rounds"] = noisy_rounds
    with open(os.path.join(BENCH, "results.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")

    print(f"corpus: {ndocs} documents, {nbytes:,} bytes of text "
          f"(zh share {summary['zh_share']:.1%})")
    for t in threads:
        res = info["threads"][str(t)]
        print(f"\n### {t} thread{'s' if t > 1 else ''}\n")
        print(f"tokens: almr {res['almr_totals']['tokens']:,} incl. "
              f"{res['almr_totals']['kept']:,} EOS = {res['tokens_without_eos']:,} without; "
              f"HF {res['hf_tokens']:,}\n")
        print(table(res, nbytes, res["tokens_without_eos"]))
    if noisy_rounds:
        print(f"\nrounds run on a busy machine: {', '.join(noisy_rounds)}")
    print("\ntoken counts agree" if not problems else "\nPROBLEMS:\n" + "\n".join(problems))
    print(f"results: {os.path.relpath(os.path.join(BENCH, 'results.json'), ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
