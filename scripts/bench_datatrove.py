#!/usr/bin/env python3
"""Baseline for almr's near-duplicate removal: datatrove's MinHash pipeline.

Runs datatrove's four MinHash stages (signatures -> buckets -> cluster ->
filter) with LocalPipelineExecutor, workers=1, on the corpus written by
`scripts/make_neardup.py --bench` (target/bench/neardup/{zh,en}.jsonl +
truth.json), and scores the result against the planted pairs.

  scripts/bench_datatrove.py [--runs 3] [--only NAME,...] [--report]

Each timed run is a fresh Python process (`... run-one ...`) working in a
fresh directory (datatrove skips tasks it finds completed), so nothing is
cached between runs except what datatrove itself caches on disk (jieba's
dictionary cache in the temp directory). Reported wall time is the sum of
the four stages as measured inside that process (interpreter start and
imports excluded; they are recorded separately as `process_s`).

Stages and executor settings (datatrove's own MinHash example, one worker):
  1 JsonlReader -> MinhashDedupSignature(config, language)   tasks=1
  2 MinhashDedupBuckets(config)     tasks=num_buckets (14: the step asserts
                                    tasks % num_buckets == 0), workers=1
  3 MinhashDedupCluster(config)                               tasks=1
  4 JsonlReader -> MinhashDedupFilter(exclusion_writer=JsonlWriter)
                -> JsonlWriter                                tasks=1
MinhashConfig() defaults: 5-grams of words, 14 buckets x 8 hashes, 64-bit
xxhash, TextNormConfig() (lowercase, punctuation -> space, digits -> 0, ...).
Writers use compression=None.

Each run first waits until the rest of the machine is idle (under 0.1 CPU
for 5 s) and is discarded and repeated when other processes used more than
0.1 CPU on average while it ran (--max-other), as measured from /proc/stat
minus the run's own CPU time.

Scoring: a planted pair is caught when exactly one of its two documents
survives; "both removed" counts pairs where both went. False removals are
removed documents that belong to no planted pair, over all such documents.

Writes target/bench/datatrove/results.json and prints Markdown tables.
"""

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(ROOT, "target", "bench", "neardup")
WORK = os.path.join(ROOT, "target", "bench", "datatrove")

# name: (files, datatrove language code, what it means)
CONFIGS = {
    "default-all": (["en.jsonl", "zh.jsonl"], "eng",
                    "default (Languages.english = 'eng': spaCy blank('en') tokenizer) on zh + en"),
    "default-zh": (["zh.jsonl"], "eng", "default English tokenizer on the zh part"),
    "default-en": (["en.jsonl"], "eng", "default English tokenizer on the en part"),
    "cmn-zh": (["zh.jsonl"], "cmn",
               "Languages.mandarin_chinese = 'cmn': spaCy blank('zh') with the jieba segmenter"),
    "zho-zh": (["zh.jsonl"], "zho",
               "Languages.chinese = 'zho': resolves to WhitespaceTokenizer in 0.10.1"),
    # not a datatrove setting: a custom WordTokenizer passed as `language`
    # (datatrove accepts one) that yields every character, so the 5-grams are
    # character 5-grams of the simplified text, as almr plans for Chinese
    "chars-zh": (["zh.jsonl"], "chars", "custom per-character tokenizer (char 5-grams) on the zh part"),
    "chars-en": (["en.jsonl"], "chars", "custom per-character tokenizer (char 5-grams) on the en part"),
}


def char_tokenizer():
    from datatrove.utils.word_tokenizers import WordTokenizer

    class CharTokenizer(WordTokenizer):
        """Every character of the (already simplified) text is a token."""

        def word_tokenize(self, text):
            return list(text)

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    return CharTokenizer("chars")


def run_one(args):
    t_start = time.perf_counter()
    from datatrove.executor import LocalPipelineExecutor
    # (importing any datatrove.pipeline.dedup module runs its __init__, which
    # imports the exact-substring steps and so needs HF `tokenizers`)
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.word_tokenizers import load_word_tokenizer
    t_imported = time.perf_counter()

    w = args.work
    cfg = MinhashConfig()
    language = char_tokenizer() if args.lang == "chars" else args.lang
    files = args.files.split(",")

    def reader():
        # one file, or every *.jsonl of the corpus folder (en.jsonl, zh.jsonl)
        return JsonlReader(args.corpus, glob_pattern=files[0] if len(files) == 1 else "*.jsonl",
                           compression=None, text_key="text", id_key="id", recursive=False)

    stages = {
        "signatures": LocalPipelineExecutor(
            pipeline=[reader(), MinhashDedupSignature(output_folder=f"{w}/sigs", config=cfg,
                                                      language=language)],
            tasks=1, workers=1, logging_dir=f"{w}/logs/1"),
        "buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=f"{w}/sigs", output_folder=f"{w}/buckets",
                                          config=cfg)],
            tasks=cfg.num_buckets, workers=1, logging_dir=f"{w}/logs/2"),
        "cluster": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=f"{w}/buckets", output_folder=f"{w}/remove_ids",
                                          config=cfg)],
            tasks=1, workers=1, logging_dir=f"{w}/logs/3"),
        "filter": LocalPipelineExecutor(
            pipeline=[reader(),
                      MinhashDedupFilter(input_folder=f"{w}/remove_ids",
                                         exclusion_writer=JsonlWriter(f"{w}/removed", compression=None)),
                      JsonlWriter(f"{w}/output", compression=None)],
            tasks=1, workers=1, logging_dir=f"{w}/logs/4"),
    }
    times = {}
    for name, ex in stages.items():
        t0 = time.perf_counter()
        ex.run()
        times[name] = time.perf_counter() - t0
    tok = load_word_tokenizer(language)
    res = {
        "stage_s": times,
        "wall_s": sum(times.values()),
        "import_s": t_imported - t_start,
        "tokenizer": f"{type(tok).__name__}({getattr(tok, 'language', None)!r}"
                     f"{', ' + json.dumps(tok.config) if getattr(tok, 'config', None) else ''})",
        "config": str(cfg),
    }
    with open(os.path.join(w, "timing.json"), "w") as f:
        json.dump(res, f, indent=2)


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    freeze = sh(f"{sys.executable} -m pip freeze --disable-pip-version-check")
    keep = ("datatrove", "spacy", "jieba", "xxhash", "numpy", "orjson", "regex", "thinc", "tokenizers")
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-"),
        "mem": sh("grep MemTotal /proc/meminfo | awk '{print $2 \" kB\"}'"),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "python": sys.version.split()[0],
        "packages": [l for l in freeze.splitlines() if l.split("==")[0].lower() in keep],
    }


def busy_s():
    """CPU-seconds spent by the whole machine (all cores, not idle/iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def wait_idle(max_wait_s, cores=0.1, window_s=5.0):
    """Wait until the rest of the machine used under `cores` CPUs for
    `window_s` seconds (this process is idle meanwhile)."""
    t_end = time.time() + max_wait_s
    while True:
        b0 = busy_s()
        time.sleep(window_s)
        load = (busy_s() - b0) / window_s
        if load < cores:
            return True
        if time.time() > t_end:
            print(f"warning: machine still busy ({load:.2f} CPUs), running anyway", file=sys.stderr)
            return False


def read_ids(folder):
    ids = []
    for path in sorted(glob.glob(os.path.join(folder, "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                ids.append(json.loads(line)["id"])
    return ids


def load_corpus(files):
    docs = {}
    for name in files:
        with open(os.path.join(CORPUS, name), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                docs[r["id"]] = len(r["text"].encode("utf-8"))
    return docs


def score(docs, survivors, truth):
    survivors = set(survivors)
    removed = set(docs) - survivors
    planted = set()
    out = {}
    for lang in ("zh", "en"):
        for kind in ("near", "exact"):
            pairs = [p for p in truth if p["lang"] == lang and p["kind"] == kind and p["original"] in docs]
            if not pairs:
                continue
            caught = sum((p["original"] in survivors) != (p["copy"] in survivors) for p in pairs)
            both = sum(p["original"] in removed and p["copy"] in removed for p in pairs)
            out[f"{lang}_{kind}"] = {"pairs": len(pairs), "caught": caught, "both_removed": both,
                                     "recall": caught / len(pairs)}
        for p in truth:
            if p["lang"] == lang:
                planted.update((p["original"], p["copy"]))
    other = [d for d in docs if d not in planted]
    false = [d for d in other if d in removed]
    out["false_removals"] = {"docs": len(other), "removed": len(false),
                             "rate": len(false) / len(other) if other else 0.0, "ids": sorted(false)[:20]}
    out["removed"] = len(removed)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    one = sub.add_parser("run-one")
    one.add_argument("--corpus", required=True)
    one.add_argument("--files", required=True)
    one.add_argument("--lang", required=True)
    one.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="comma-separated config names (default: all): " + ", ".join(CONFIGS))
    ap.add_argument("--max-other", type=float, default=0.1,
                    help="retry a run when other processes used more than this many CPUs on average "
                         "during it (default 0.1); each run first waits for such an idle machine")
    ap.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for an idle machine")
    ap.add_argument("--report", action="store_true", help="only print the tables of the last results.json")
    args = ap.parse_args()
    if args.cmd == "run-one":
        return run_one(args)
    if args.report:
        return print_tables(json.load(open(os.path.join(WORK, "results.json"))))

    truth = json.load(open(os.path.join(CORPUS, "truth.json"), encoding="utf-8"))
    names = args.only.split(",") if args.only else list(CONFIGS)
    os.makedirs(WORK, exist_ok=True)
    results_path = os.path.join(WORK, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    results.setdefault("configs", {})
    results["machine"] = machine()
    for name in names:
        files, lang, what = CONFIGS[name]
        if len(files) > 1:
            assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(CORPUS, "*.jsonl"))) == files
        docs = load_corpus(files)
        runs = []
        attempts = 0
        while len(runs) < args.runs:
            i = len(runs)
            attempts += 1
            work = os.path.join(WORK, name)
            subprocess.run(["rm", "-rf", work], check=True)
            os.makedirs(work)
            wait_idle(args.max_wait)
            b0, r0 = busy_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            with open(os.path.join(WORK, f"{name}.log"), "w") as log:
                subprocess.run([sys.executable, os.path.abspath(__file__), "run-one", "--corpus", CORPUS,
                                "--files", ",".join(files), "--lang", lang, "--work", work],
                               check=True, stdout=log, stderr=subprocess.STDOUT)
            process_s = time.perf_counter() - t0
            b1, r1 = busy_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
            child = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            # CPU used meanwhile by anything else (bench's own driver is idle)
            other = max(0.0, (b1 - b0) - child)
            timing = json.load(open(os.path.join(work, "timing.json")))
            timing["process_s"] = process_s
            timing["cpu_s"] = child
            timing["other_cpu_s"] = other
            if other > args.max_other * process_s and attempts < args.runs + 12:
                print(f"{name}: discarding a run, other processes used {other:.1f} CPU-s "
                      f"in {process_s:.1f} s", file=sys.stderr)
                continue
            survivors = read_ids(os.path.join(work, "output"))
            removed = read_ids(os.path.join(work, "removed"))
            assert len(survivors) + len(removed) == len(docs), (len(survivors), len(removed), len(docs))
            timing["score"] = score(docs, survivors, truth)
            runs.append(timing)
            print(f"{name} run {i + 1}: {timing['wall_s']:.2f} s (other CPU {other:.1f} s) "
                  f"({', '.join(f'{k} {v:.2f}' for k, v in timing['stage_s'].items())}); "
                  f"removed {timing['score']['removed']}", file=sys.stderr)
        wall = statistics.median(r["wall_s"] for r in runs)
        nbytes = sum(docs.values())
        results["configs"][name] = {
            "files": files, "language": lang, "what": what, "tokenizer": runs[0]["tokenizer"],
            "minhash_config": runs[0]["config"], "docs": len(docs), "text_bytes": nbytes,
            "wall_s_median": wall, "wall_s_all": [r["wall_s"] for r in runs],
            "other_cpu_s_all": [round(r["other_cpu_s"], 2) for r in runs], "attempts": attempts,
            "process_s_median": statistics.median(r["process_s"] for r in runs),
            "stage_s_median": {k: statistics.median(r["stage_s"][k] for r in runs)
                               for k in runs[0]["stage_s"]},
            "docs_per_s": len(docs) / wall, "mb_per_s": nbytes / 1e6 / wall,
            "score": runs[0]["score"],
            "score_identical_across_runs": all(r["score"] == runs[0]["score"] for r in runs),
        }
        with open(results_path, "w") as f:
            json.dump(results, f, indent=2, ensure_ascii=False)
            f.write("\n")
    print_tables(results)


def fmt_recall(s, key):
    if key not in s:
        return "–"
    d = s[key]
    return f"{d['caught']}/{d['pairs']} ({d['recall']:.0%})"


# runs on zh and en separately, reported together: times add up, pairs and
# false removals are pooled
COMBINED = {
    "cmn-zh + default-en": ("cmn-zh", "default-en"),
    "chars-zh + default-en": ("chars-zh", "default-en"),
}


def combine(a, b):
    wall = a["wall_s_median"] + b["wall_s_median"]
    docs, nbytes = a["docs"] + b["docs"], a["text_bytes"] + b["text_bytes"]
    score = {}
    for k in set(a["score"]) | set(b["score"]):
        if k.endswith(("_near", "_exact")):
            score[k] = a["score"].get(k) or b["score"][k]
    fa, fb = a["score"]["false_removals"], b["score"]["false_removals"]
    n, r = fa["docs"] + fb["docs"], fa["removed"] + fb["removed"]
    score["false_removals"] = {"docs": n, "removed": r, "rate": r / n, "ids": fa["ids"] + fb["ids"]}
    score["removed"] = a["score"]["removed"] + b["score"]["removed"]
    return {"tokenizer": f"{a['tokenizer']} / {b['tokenizer']}", "docs": docs, "text_bytes": nbytes,
            "wall_s_median": wall, "docs_per_s": docs / wall, "mb_per_s": nbytes / 1e6 / wall,
            "score": score, "stage_s_median": {k: a["stage_s_median"][k] + b["stage_s_median"][k]
                                               for k in a["stage_s_median"]},
            "process_s_median": a["process_s_median"] + b["process_s_median"]}


def print_tables(results):
    cfgs = dict(results["configs"])
    for name, (a, b) in COMBINED.items():
        if a in cfgs and b in cfgs:
            cfgs[name] = combine(cfgs[a], cfgs[b])
    print("| run | tokenizer | docs | MB | wall s (median) | docs/s | MB/s "
          "| zh near | zh exact | en near | en exact | false removals |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, c in cfgs.items():
        s = c["score"]
        fr = s["false_removals"]
        print(f"| {name} | {c['tokenizer']} | {c['docs']:,} | {c['text_bytes'] / 1e6:.2f} "
              f"| {c['wall_s_median']:.2f} | {c['docs_per_s']:.0f} | {c['mb_per_s']:.3f} "
              f"| {fmt_recall(s, 'zh_near')} | {fmt_recall(s, 'zh_exact')} "
              f"| {fmt_recall(s, 'en_near')} | {fmt_recall(s, 'en_exact')} "
              f"| {fr['removed']}/{fr['docs']} ({fr['rate']:.2%}) |")
    print()
    print("| run | signatures s | buckets s | cluster s | filter s | process s (incl. imports) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, c in cfgs.items():
        st = c["stage_s_median"]
        print(f"| {name} | {st['signatures']:.2f} | {st['buckets']:.2f} | {st['cluster']:.2f} "
              f"| {st['filter']:.2f} | {c['process_s_median']:.2f} |")


if __name__ == "__main__":
    main()
