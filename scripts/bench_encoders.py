#!/usr/bin/env python3
"""Encoder throughput, side by side on the same texts: almr's own byte-level
BPE encoder, the `tokenizers` crate in Rust, tiktoken and Python `tokenizers`.

Run from the repository root after scripts/bench_corpus.py
(`scripts/bench_tokenize.sh --encoders` does all of it). The texts are the
benchmark corpus (target/bench/corpus: People's Daily news and English
Wikipedia), each distinct document once, so that no encoder's cache is helped
by repeats. For each tokenizer.json and thread count T, one round times:

  almr        almr::tokenize::fast::FastTokenizer::encode per text on a rayon
              pool of T threads (benches/encoders.rs, a worker process);
  tokenizers  the `tokenizers` crate's Tokenizer::encode_fast(text, false) the
              same way, in the same worker;
  tiktoken    tiktoken.Encoding built from the tokenizer.json's vocabulary
              (rank = id), split pattern and added tokens,
              encode_ordinary_batch(texts, num_threads=T);
  HF Python   tokenizers.Tokenizer.encode_batch_fast(texts, False) in a worker
              process started with RAYON_NUM_THREADS=T.

Each timed call gets a newly loaded encoder (loading untimed), so caches start
empty. The order of the encoders rotates from round to round, and each round
waits until the CPUs are idle (see bench_tokenize.wait_idle). Before timing,
the script checks that almr, the `tokenizers` crate and tiktoken give the same
ids for every text. Reports medians over --runs rounds, in MB/s of UTF-8 text
(10^6 bytes), and writes target/bench/encoders/results.json.
"""

import argparse
import array
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_tokenize import BENCH, ROOT, load_texts, machine_info, wait_idle  # noqa: E402

OUT = os.path.join(BENCH, "encoders")
ENCODERS = ("almr", "tokenizers", "tiktoken", "hf_python")
LABELS = {"almr": "almr encoder (Rust)", "tokenizers": "`tokenizers` crate (Rust)",
          "tiktoken": "tiktoken (Python, Rust core)", "hf_python": "`tokenizers` (Python)"}


# ------------------------------------------------------------ HF Python worker

def hf_worker(tokenizer, texts_path):
    """Answers each "run" line on stdin with one timed encode_batch_fast."""
    from tokenizers import Tokenizer

    texts = json.load(open(texts_path, encoding="utf-8"))
    Tokenizer.from_file(tokenizer).encode_batch_fast(texts, add_special_tokens=False)  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        tok = Tokenizer.from_file(tokenizer)
        c0, t0 = time.process_time(), time.perf_counter()
        encs = tok.encode_batch_fast(texts, add_special_tokens=False)
        t1, c1 = time.perf_counter(), time.process_time()
        print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0,
                          "tokens": sum(len(e.ids) for e in encs)}), flush=True)


class Process:
    """A worker process that answers one JSON line per command line."""

    def __init__(self, cmd, env=None):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT, env=env)
        self.ready = self.ask(None)

    def ask(self, command):
        if command is not None:
            self.p.stdin.write(command + "\n")
            self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"worker {self.p.args} died")
        answer = json.loads(line)
        if "error" in answer:
            sys.exit(f"worker {self.p.args}: {answer['error']}")
        return answer

    def close(self):
        self.p.stdin.close()
        self.p.wait()


# --------------------------------------------------------------------- tiktoken

def byte_decoder():
    """GPT-2's char -> byte table, the inverse of byte-level vocabularies' one."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, shifted = {}, 0
    for b in range(256):
        if b in keep:
            table[chr(b)] = b
        else:
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


def tiktoken_encoding(tokenizer):
    """tiktoken.Encoding from a byte-level BPE tokenizer.json."""
    import tiktoken

    t = json.load(open(tokenizer, encoding="utf-8"))
    dec = byte_decoder()
    ranks = {bytes(dec[c] for c in tok): i for tok, i in t["model"]["vocab"].items()}
    special = {a["content"]: a["id"] for a in t["added_tokens"]
               if a["content"] not in t["model"]["vocab"]}
    pattern = t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    return tiktoken.Encoding(name=os.path.basename(os.path.dirname(tokenizer)), pat_str=pattern,
                             mergeable_ranks=ranks, special_tokens=special)


def time_tiktoken(tokenizer, texts, threads):
    enc = tiktoken_encoding(tokenizer)
    c0, t0 = time.process_time(), time.perf_counter()
    ids = enc.encode_ordinary_batch(texts, num_threads=threads)
    t1, c1 = time.perf_counter(), time.process_time()
    return {"wall": t1 - t0, "cpu": c1 - c0, "tokens": sum(map(len, ids))}


# ----------------------------------------------------------------------- checks

def read_dump(path):
    """Per-text id lists from the worker's dump."""
    a = array.array("I")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    out, i = [], 0
    while i < len(a):
        n = a[i]
        out.append(a[i + 1:i + 1 + n].tolist())
        i += 1 + n
    return out


def check_ids(rust, tokenizer, texts, name):
    """Texts on which almr, the `tokenizers` crate and tiktoken disagree."""
    ids = {}
    for enc in ("almr", "tokenizers"):
        path = os.path.join(OUT, f"{name}.{enc}.ids")
        rust.ask(f"dump {enc} {path}")
        ids[enc] = read_dump(path)
        os.remove(path)
    ids["tiktoken"] = tiktoken_encoding(tokenizer).encode_ordinary_batch(texts)
    differ = {enc: sum(a != b for a, b in zip(ids[enc], ids["tokenizers"]))
              for enc in ("almr", "tiktoken")}
    return {"texts": len(texts), "tokens": sum(map(len, ids["tokenizers"])),
            "texts_differing_from_tokenizers": differ}


# ------------------------------------------------------------------------- main

def worker_binary():
    """Builds benches/encoders.rs (release profile) and returns its path."""
    p = subprocess.run(["cargo", "bench", "--bench", "encoders", "--no-run",
                        "--message-format=json"], cwd=ROOT, check=True,
                       stdout=subprocess.PIPE, text=True)
    for line in p.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and \
                msg["target"]["name"] == "encoders":
            return msg["executable"]
    sys.exit("cargo did not report the encoders bench binary")


def summarize(runs, nbytes):
    walls = [r["wall"] for r in runs]
    med = statistics.median(walls)
    return {"wall_median": med, "wall_min": min(walls), "wall_max": max(walls),
            "cpu_median": statistics.median(r["cpu"] for r in runs),
            "mb_s": nbytes / med / 1e6, "tokens": runs[0]["tokens"], "walls": walls}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizers", default="llama3,qwen3",
                    help="names under fixtures/tokenizers/ (default: llama3,qwen3)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default: 1,2)")
    ap.add_argument("--runs", type=int, default=7, help="rounds (default: 7)")
    ap.add_argument("--min-idle", type=float, default=0.9)
    ap.add_argument("--max-wait", type=float, default=60)
    ap.add_argument("--worker-hf", nargs=2, metavar=("TOKENIZER", "TEXTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_hf:
        return hf_worker(*args.worker_hf)

    os.makedirs(OUT, exist_ok=True)
    summary = json.load(open(os.path.join(BENCH, "corpus", "summary.json")))
    texts = list(dict.fromkeys(load_texts(summary)))  # each distinct text once
    nbytes = sum(len(t.encode()) for t in texts)
    texts_path = os.path.join(OUT, "texts.json")
    with open(texts_path, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    threads = [int(t) for t in args.threads.split(",")]
    binary = worker_binary()
    info = machine_info()
    print(f"{len(texts)} texts, {nbytes / 1e6:.2f} MB; {info['cpu']}, {info['nproc']} CPUs",
          file=sys.stderr)

    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": info, "texts": len(texts), "bytes": nbytes, "runs": args.runs,
               "tokenizers": {}}
    for name in args.tokenizers.split(","):
        tokenizer = os.path.join(ROOT, "fixtures", "tokenizers", name, "tokenizer.json")
        rust = Process([binary, tokenizer, texts_path])
        check = check_ids(rust, tokenizer, texts, name)
        print(f"{name}: ids checked: {check}", file=sys.stderr)
        hf = {}
        for t in threads:
            env = dict(os.environ, RAYON_NUM_THREADS=str(t), RAYON_RS_NUM_THREADS=str(t),
                       TOKENIZERS_PARALLELISM="true")
            hf[t] = Process([sys.executable, os.path.abspath(__file__), "--worker-hf",
                             tokenizer, texts_path], env=env)
        timings = {(e, t): [] for e in ENCODERS for t in threads}
        unsettled = 0
        for r in range(args.runs):
            if wait_idle(args.min_idle, args.max_wait) is None:
                unsettled += 1
            order = ENCODERS[r % len(ENCODERS):] + ENCODERS[:r % len(ENCODERS)]
            for t in threads:
                for enc in order:
                    if enc in ("almr", "tokenizers"):
                        res = rust.ask(f"run {enc} {t}")
                    elif enc == "tiktoken":
                        res = time_tiktoken(tokenizer, texts, t)
                    else:
                        res = hf[t].ask("run")
                    timings[(enc, t)].append(res)
            print(f"{name}: round {r + 1}/{args.runs}", file=sys.stderr)
        rust.close()
        for p in hf.values():
            p.close()
        per = {f"{e}@{t}": summarize(timings[(e, t)], nbytes) for e in ENCODERS for t in threads}
        results["tokenizers"][name] = {"check": check, "rounds_not_idle": unsettled,
                                       "results": per}

        print(f"\n**{name}** ({len(texts):,} texts, {nbytes / 1e6:.2f} MB; ids: almr differs "
              f"from `tokenizers` on {check['texts_differing_from_tokenizers']['almr']} texts, "
              f"tiktoken on {check['texts_differing_from_tokenizers']['tiktoken']})\n")
        head = "| encoder | " + " | ".join(f"T={t} MB/s (min–max)" for t in threads)
        head += " | " + " | ".join(f"T={t} vs tiktoken" for t in threads)
        if len(threads) > 1:
            head += f" | T={threads[-1]}/T={threads[0]}"
        print(head + " |")
        print("| --- |" + " ---: |" * (2 * len(threads) + (len(threads) > 1)))
        for e in ENCODERS:
            cells = []
            for t in threads:
                s = per[f"{e}@{t}"]
                lo, hi = nbytes / s["wall_max"] / 1e6, nbytes / s["wall_min"] / 1e6
                cells.append(f"{s['mb_s']:.2f} ({lo:.2f}–{hi:.2f})")
            for t in threads:
                cells.append(f"{per[f'{e}@{t}']['mb_s'] / per[f'tiktoken@{t}']['mb_s']:.2f}×")
            if len(threads) > 1:
                scale = per[f"{e}@{threads[-1]}"]["mb_s"] / per[f"{e}@{threads[0]}"]["mb_s"]
                cells.append(f"{scale:.2f}×")
            print(f"| {LABELS[e]} | " + " | ".join(cells) + " |")
        if unsettled:
            print(f"\n({unsettled} rounds started without an idle machine)")
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
