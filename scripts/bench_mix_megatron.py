#!/usr/bin/env python3
"""Baseline for scripts/bench_mix.py: how long Megatron-LM takes to build the
same training-stream indexes over the same data.

    /work/scratch/megatron/venv/bin/python scripts/bench_mix_megatron.py
        [--runs 5] [--seq-lens 2048,512] [--almr 0.5] [--tokens 1B]
        [--seed 1234] [--threads 1] [--big target/bench/mix/big]

Run it with a Python that has megatron-core, torch and numpy (the venv above:
megatron-core 0.16.1 with its compiled helpers_cpp). It installs nothing,
runs on the CPU only, and writes only under target/bench/mix/megatron/.

Data: the synthetic build that scripts/bench_mix.py makes at
target/bench/mix/big/ (run that first; this script does not make it). Its
manifest.json lists the shard prefixes (`shards[].prefix`, relative to the
build) and each source's `additional` flag.

What is timed, --runs times for each sequence length, each run a fresh
`python scripts/bench_mix_megatron.py --child SPEC` process with an empty
cache directory (deleted before every run, so Megatron always builds and
never loads its .npy indexes):

    BlendedMegatronDatasetBuilder(GPTDataset, [N, 0, 0], lambda: True,
                                  GPTDatasetConfig(...)).build()

with blend = every shard prefix, weighted so the additional sources get
--almr of the samples and the others 1 - --almr, each group split among its
shards by tokens (what `almr mix --export megatron` writes); split
"100,0,0" (a train set only); sequence_length L; random_seed --seed;
path_to_cache target/bench/mix/megatron/cache-L; N = ceil(--tokens / L)
training samples (the sample count `almr mix --tokens` gives). The config
needs a tokenizer object: a stand-in exposing vocab_size, eod (the build's
eos_id) and pad (-1, Megatron's own "no pad token") is passed; nothing is
tokenized. Megatron's BlendedDataset calls torch.distributed.get_rank() when
it writes its cache, so the child starts a one-process gloo group (FileStore)
first; that takes milliseconds and is timed separately.

Reported per run: the whole process's wall clock (Python start-up, importing
megatron.core and torch, the gloo group, build(), exit) with peak RSS and CPU
time from /usr/bin/time -f '%M %U %S' (or os.wait4), and from inside the
child: import time, build() time, and build() split into stages by timing
wrappers around Megatron's own functions (loading the .idx files, the token
sum per epoch, the document index shuffle, helpers.build_sample_idx, the
sample shuffle, helpers.build_blending_indices, numpy.save of the cache).
Megatron's own log (logger megatron.core at DEBUG, with its "time elapsed"
lines) is kept per run in target/bench/mix/megatron/run-L-I.log.

Prints markdown tables, the machine and the versions, and, for comparison,
the almr numbers in target/bench/mix/results.json (written by
scripts/bench_mix.py; not rerun here). Every timing goes to
target/bench/mix/megatron/results.json.
"""
import argparse, datetime, json, math, os, platform, shutil, statistics, subprocess, sys
import tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_mix import loadavg, log, machine, parse_count  # noqa: E402  (same folder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "bench", "mix")
WORK = os.path.join(BENCH, "megatron")
ALMR_RESULTS = os.path.join(BENCH, "results.json")


# ====================================================================== child

def child(spec_path):
    """One timed build in this process; writes spec["result"] (JSON)."""
    t_start = time.perf_counter()
    wall_start = time.time()
    import logging, resource
    with open(spec_path) as f:
        spec = json.load(f)

    records = []  # (seconds since t_start, level, logger, message)

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((time.perf_counter() - t_start, record.levelname, record.name,
                            record.getMessage()))

    fmt = logging.Formatter("%(relativeCreated)9.1f ms %(levelname)-7s %(name)s: %(message)s")
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(fmt)
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    root.addHandler(Keep())
    root.addHandler(out)
    logging.getLogger("megatron.core").setLevel(logging.DEBUG)
    logging.captureWarnings(True)  # import-time and dataset warnings land in the log

    t = time.perf_counter()
    import numpy
    import torch
    import torch.distributed as dist
    from megatron.core.datasets import gpt_dataset, helpers
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder)
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from importlib import metadata
    t_import = time.perf_counter() - t
    rss_after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # ---- stage timers: thin wrappers around the functions Megatron calls
    stages = {}

    active = set()  # _build_document_index calls itself: count the outer call only

    def timed(name, fn):
        def wrapper(*a, **k):
            if name in active:
                return fn(*a, **k)
            active.add(name)
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                active.discard(name)
                s = stages.setdefault(name, [0.0, 0])
                s[0] += time.perf_counter() - t0
                s[1] += 1
        return wrapper

    GPTDataset.build_low_level_dataset = staticmethod(
        timed("load .idx (IndexedDataset)", GPTDataset.build_low_level_dataset))
    GPTDataset._get_num_tokens_per_epoch = timed(
        "tokens per epoch (numpy sum)", GPTDataset._get_num_tokens_per_epoch)
    gpt_dataset._build_document_index = timed(
        "document index (numpy shuffle)", gpt_dataset._build_document_index)
    helpers.build_sample_idx = timed("sample index (C++ build_sample_idx)",
                                     helpers.build_sample_idx)
    gpt_dataset._build_shuffle_index = timed(
        "sample shuffle index (numpy shuffle)", gpt_dataset._build_shuffle_index)
    helpers.build_blending_indices = timed("blending indices (C++ build_blending_indices)",
                                           helpers.build_blending_indices)
    numpy.save = timed("write cache (numpy.save)", numpy.save)

    # ---- one-process gloo group (BlendedDataset calls dist.get_rank())
    t = time.perf_counter()
    store = spec["store"]
    if os.path.exists(store):
        os.remove(store)
    dist.init_process_group("gloo", init_method="file://" + store, rank=0, world_size=1)
    t_dist = time.perf_counter() - t

    class StandInTokenizer:
        """What GPTDatasetConfig and MegatronDataset read from a tokenizer
        while building indexes; it never tokenizes."""
        def __init__(self, vocab_size, eod):
            self.vocab_size = vocab_size
            self.eod = eod
            self.pad = -1  # Megatron's _PAD_TOKEN_ID: "no pad token"
            # Part of each dataset's cache key (json.dumps default=).
            self.unique_identifiers = {"class": "StandInTokenizer", "vocab_size": vocab_size,
                                       "eod": eod}

    config = GPTDatasetConfig(
        random_seed=spec["seed"],
        sequence_length=spec["seq_len"],
        blend=(spec["prefixes"], spec["weights"]),
        split="100,0,0",
        path_to_cache=spec["cache"],
        mmap_bin_files=True,
        num_dataset_builder_threads=spec["threads"],
        tokenizer=StandInTokenizer(spec["vocab_size"], spec["eod"]),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
    )
    n = spec["samples"]
    t = time.perf_counter()
    datasets = BlendedMegatronDatasetBuilder(GPTDataset, [n, 0, 0], lambda: True, config).build()
    t_build = time.perf_counter() - t
    rss_after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # ---- checks (not timed)
    train = datasets[0]
    counts = numpy.bincount(numpy.asarray(train.dataset_index), minlength=len(spec["prefixes"]))
    per_dataset = []
    for i, ds in enumerate(train.datasets):
        epoch_tokens = int(numpy.sum(ds.dataset.sequence_lengths[ds.indices]))
        per_dataset.append({
            "prefix": os.path.relpath(spec["prefixes"][i], spec["big"]),
            "weight": train.weights[i],
            "blend_samples": int(counts[i]),
            "built_samples": len(ds),
            "requested_samples": ds.num_samples,
            "documents": int(len(ds.indices)),
            "document_index_len": int(len(ds.document_index)),
            "epochs_built": round(len(ds.document_index) / max(1, len(ds.indices)), 6),
            "epochs_used": (int(counts[i]) * spec["seq_len"]) / epoch_tokens,
        })
    additional = sum(int(counts[i]) for i, a in enumerate(spec["additional"]) if a)
    messages = [r[3] for r in records]
    cache_files = sorted(os.listdir(spec["cache"])) if os.path.isdir(spec["cache"]) else []
    result = {
        "import_s": t_import,
        "dist_init_s": t_dist,
        "build_s": t_build,
        "in_process_s": time.perf_counter() - t_start,
        "wall_start": wall_start,
        "stages": {k: {"s": v[0], "calls": v[1]} for k, v in stages.items()},
        "rss_after_import_kib": rss_after_import,
        "rss_after_build_kib": rss_after_build,
        "samples": len(train),
        "achieved_almr": additional / len(train),
        "datasets": per_dataset,
        "cache_files": len(cache_files),
        "cache_bytes": sum(os.path.getsize(os.path.join(spec["cache"], f)) for f in cache_files),
        "built": sum(m.startswith("Build and save the") for m in messages),
        "loaded": sum(m.startswith("Load the") and "indices" in m for m in messages),
        "warnings": [short_warning(r[3]) for r in records if r[1] == "WARNING"],
        "log_elapsed": log_elapsed(records),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "megatron-core": metadata.version("megatron-core"),
        },
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    dist.destroy_process_group()
    result["wall_end"] = time.time()  # the rest is interpreter exit
    with open(spec["result"], "w") as f:
        json.dump(result, f, indent=2)


def short_warning(msg):
    """'module/file.py:N: Category: text' from a captured warning."""
    first = msg.strip().splitlines()[0]
    if "site-packages/" in first:
        first = first.split("site-packages/", 1)[1]
    return first[:300]


def log_elapsed(records):
    """Megatron's own "time elapsed" DEBUG lines, each with the INFO line that
    opened its step: [(step, seconds)]."""
    out, step = [], None
    for _, level, _, msg in records:
        m = msg.strip()
        if level == "INFO" and not m.startswith(">"):
            step = m
        elif m.startswith("> time elapsed:"):
            out.append((step, float(m.split(":")[1].split()[0])))
    return out


# ===================================================================== parent

def blend(big):
    """(prefixes, additional flags, tokens) of every shard in the build."""
    with open(os.path.join(big, "manifest.json")) as f:
        manifest = json.load(f)
    flag = {s["name"]: bool(s["additional"]) for s in manifest["sources"]}
    shards = manifest["shards"]
    for sh in shards:
        for ext in (".idx", ".bin"):
            if not os.path.exists(os.path.join(big, sh["prefix"] + ext)):
                raise SystemExit(f"{big}: {sh['prefix']}{ext} is missing")
    return manifest, shards, flag


def weights_for(shards, flag, almr):
    """ALMR split between the groups, each group's share split among its
    shards by tokens."""
    group_tokens = {True: 0, False: 0}
    for sh in shards:
        group_tokens[flag[sh["source"]]] += sh["tokens"]
    share = {True: almr, False: 1.0 - almr}
    weights = []
    for sh in shards:
        g = flag[sh["source"]]
        weights.append(share[g] * sh["tokens"] / group_tokens[g] if group_tokens[g] else 0.0)
    return weights


def run_child(spec, log_path):
    """One timed child: (wall s, peak RSS KiB, user s, sys s)."""
    cmd = [spec["python"], os.path.abspath(__file__), "--child", spec["spec_path"]]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    gnu_time = "/usr/bin/time"
    with open(log_path, "w") as lf:
        spawned = time.time()
        if os.access(gnu_time, os.X_OK):
            with tempfile.NamedTemporaryFile("r", dir=WORK, suffix=".time") as tf:
                t = time.perf_counter()
                p = subprocess.run([gnu_time, "-f", "%M %U %S", "-o", tf.name] + cmd, cwd=ROOT,
                                   stdout=lf, stderr=subprocess.STDOUT, env=env)
                wall = time.perf_counter() - t
                fields = tf.read().split()
            ended = time.time()
            rc = p.returncode
            rss, user, sys_ = (int(fields[-3]), float(fields[-2]), float(fields[-1])) \
                if rc == 0 else (0, 0.0, 0.0)
        else:
            t = time.perf_counter()
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=lf, stderr=subprocess.STDOUT, env=env)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t
            rc = os.waitstatus_to_exitcode(status)
            rss, user, sys_ = ru.ru_maxrss, ru.ru_utime, ru.ru_stime
        ended = time.time()
    if rc != 0:
        with open(log_path) as f:
            tail = f.read()[-4000:]
        raise SystemExit(f"Megatron child failed ({rc}); log {log_path}:\n{tail}")
    return wall, rss, user, sys_, spawned, ended


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per seq-len (default 5)")
    ap.add_argument("--seq-lens", default="2048,512", help="comma-separated (default 2048,512)")
    ap.add_argument("--almr", type=float, default=0.5, help="share of additional sources (0.5)")
    ap.add_argument("--tokens", type=parse_count, default=parse_count("1B"),
                    help="training tokens; samples = ceil(tokens / seq_len) (default 1B)")
    ap.add_argument("--seed", type=int, default=1234, help="random_seed (default 1234)")
    ap.add_argument("--threads", type=int, default=1,
                    help="num_dataset_builder_threads (default 1, Megatron's default)")
    ap.add_argument("--big", default=os.path.join(BENCH, "big"),
                    help="the synthetic build (default target/bench/mix/big)")
    ap.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return

    big = os.path.abspath(args.big)
    if not os.path.exists(os.path.join(big, "manifest.json")):
        raise SystemExit(f"{big}/manifest.json not found: run scripts/bench_mix.py first")
    manifest, shards, flag = blend(big)
    weights = weights_for(shards, flag, args.almr)
    seq_lens = [int(x) for x in args.seq_lens.split(",") if x]
    os.makedirs(WORK, exist_ok=True)
    tok = manifest.get("tokenizer", {})
    log(f"blend over {len(shards)} shard(s) of {os.path.relpath(big, ROOT)}:")
    for sh, w in zip(shards, weights):
        log(f"  {w:.6f}  {sh['prefix']}  ({sh['tokens']:,} tokens, "
            f"{'additional' if flag[sh['source']] else 'other'})")

    results = []
    for seq_len in seq_lens:
        samples = math.ceil(args.tokens / seq_len)
        cache = os.path.join(WORK, f"cache-{seq_len}")
        spec = {
            "python": sys.executable,
            "big": big,
            "prefixes": [os.path.join(big, sh["prefix"]) for sh in shards],
            "weights": weights,
            "additional": [flag[sh["source"]] for sh in shards],
            "seq_len": seq_len,
            "samples": samples,
            "seed": args.seed,
            "threads": args.threads,
            "cache": cache,
            "store": os.path.join(WORK, f"gloo-store-{seq_len}"),
            "result": os.path.join(WORK, f"child-{seq_len}.json"),
            "vocab_size": tok.get("vocab_size", 128256),
            "eod": tok.get("eos_id", 128001),
            "spec_path": os.path.join(WORK, f"spec-{seq_len}.json"),
        }
        with open(spec["spec_path"], "w") as f:
            json.dump(spec, f, indent=2)
        runs = []
        for i in range(args.runs):
            shutil.rmtree(cache, ignore_errors=True)  # never a cache hit
            if os.path.exists(spec["result"]):
                os.remove(spec["result"])
            load = loadavg()
            log_path = os.path.join(WORK, f"run-{seq_len}-{i + 1}.log")
            wall, rss, user, sys_, spawned, ended = run_child(spec, log_path)
            with open(spec["result"]) as f:
                r = json.load(f)
            # Python start-up (to the first line of child()) and exit (after
            # destroy_process_group), from the two processes' clocks.
            r["startup_s"] = r["wall_start"] - spawned
            r["exit_s"] = ended - r["wall_end"]
            if r["loaded"] or not r["built"]:
                raise SystemExit(f"run {i + 1}: Megatron loaded cached indexes (see {log_path})")
            # Megatron's blend is sum(ceil(N * w_i)) long: up to one sample
            # per dataset over N.
            if not samples <= r["samples"] <= samples + len(shards):
                raise SystemExit(f"run {i + 1}: {r['samples']} samples, asked for {samples}")
            r.update(wall_s=wall, max_rss_kib=rss, user_s=user, sys_s=sys_, loadavg_before=load,
                     log=os.path.relpath(log_path, ROOT))
            runs.append(r)
            log(f"  seq_len {seq_len} run {i + 1}/{args.runs}: {wall:.2f} s wall "
                f"(start {r['startup_s']:.2f}, import {r['import_s']:.2f}, build "
                f"{r['build_s']:.2f}, exit {r['exit_s']:.2f}), "
                f"{user + sys_:.2f} s CPU, {rss / 1024:.0f} MiB peak RSS (load {load})")
        walls = [r["wall_s"] for r in runs]
        builds = [r["build_s"] for r in runs]
        stage_names = list(runs[0]["stages"])
        results.append({
            "seq_len": seq_len,
            "samples": samples,
            "megatron_samples": runs[-1]["samples"],
            "runs": runs,
            "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "median_build_s": statistics.median(builds), "min_build_s": min(builds),
            "max_build_s": max(builds),
            "median_import_s": statistics.median(r["import_s"] for r in runs),
            "median_startup_s": statistics.median(r["startup_s"] for r in runs),
            "median_exit_s": statistics.median(r["exit_s"] for r in runs),
            "median_cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in runs),
            "max_rss_mib": max(r["max_rss_kib"] for r in runs) / 1024,
            "median_rss_after_import_mib":
                statistics.median(r["rss_after_import_kib"] for r in runs) / 1024,
            "stages": {k: statistics.median(r["stages"][k]["s"] for r in runs)
                       for k in stage_names},
            "stage_calls": {k: runs[0]["stages"][k]["calls"] for k in stage_names},
            "cache_bytes": runs[-1]["cache_bytes"],
            "achieved_almr": runs[-1]["achieved_almr"],
            "datasets": runs[-1]["datasets"],
        })

    info = machine()
    ver = results[0]["runs"][0]["versions"] if results and results[0]["runs"] else {}
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": info,
        "versions": ver,
        "command": " ".join([os.path.relpath(sys.executable, ROOT)
                             if sys.executable.startswith(ROOT) else sys.executable]
                            + sys.argv),
        "blend": [{"prefix": sh["prefix"], "weight": w, "tokens": sh["tokens"],
                   "additional": flag[sh["source"]]} for sh, w in zip(shards, weights)],
        "options": {"almr": args.almr, "tokens": args.tokens, "seed": args.seed,
                    "threads": args.threads, "split": "100,0,0"},
        "results": results,
    }
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(report, f, indent=2)

    # ---------------------------------------------------------------- markdown
    print(f"**Megatron-LM** (megatron-core {ver.get('megatron-core', '?')}) "
          f"`BlendedMegatronDatasetBuilder(GPTDataset, [N, 0, 0], ...).build()` over "
          f"`{os.path.relpath(big, ROOT)}` ({len(shards)} shards), ALMR {args.almr}, "
          f"{args.tokens:,} tokens, split 100,0,0, seed {args.seed}, "
          f"{args.threads} builder thread(s), empty cache each run; "
          f"whole process, wall clock, {args.runs} runs each:")
    print()
    print("| seq_len | samples (asked / built) | Megatron median s (min–max) | of which build() s "
          "| import s | start + exit s | CPU s | peak RSS MiB | cache MB | achieved ALMR |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['seq_len']} | {r['samples']:,} / {r['megatron_samples']:,} | "
              f"{r['median_s']:.2f} "
              f"({r['min_s']:.2f}–{r['max_s']:.2f}) | {r['median_build_s']:.2f} "
              f"({r['min_build_s']:.2f}–{r['max_build_s']:.2f}) | {r['median_import_s']:.2f} | "
              f"{r['median_startup_s'] + r['median_exit_s']:.2f} | "
              f"{r['median_cpu_s']:.2f} | {r['max_rss_mib']:,.0f} | {r['cache_bytes'] / 1e6:,.1f} | "
              f"{r['achieved_almr']:.6f} |")
    print()
    print("**Where build() spends its time** (median s over the runs; calls per run):")
    print()
    names = list(results[0]["stages"]) if results else []
    print("| stage | " + " | ".join(f"L={r['seq_len']}" for r in results) + " |")
    print("| --- | " + " | ".join("---:" for _ in results) + " |")
    for k in names:
        print(f"| {k} | " + " | ".join(
            f"{r['stages'][k]:.3f} ({r['stage_calls'][k]}×)" for r in results) + " |")
    print("| rest of build() | " + " | ".join(
        f"{r['median_build_s'] - sum(r['stages'].values()):.3f}" for r in results) + " |")
    print("| **build()** | " + " | ".join(f"**{r['median_build_s']:.3f}**" for r in results)
          + " |")
    print()
    for r in results:
        el = r["runs"][0]["log_elapsed"]
        gpt = [s for step, s in el if step and "GPTDataset" in step and "Build" in step]
        bl = [s for step, s in el if step and "dataset sample indexes" in step]
        print(f"Megatron's own log, seq_len {r['seq_len']} run 1: GPTDataset build+save "
              f"{', '.join(f'{s:.2f}' for s in gpt)} s; BlendedDataset build+save "
              f"{', '.join(f'{s:.2f}' for s in bl)} s. Per shard: " + "; ".join(
                  f"{os.path.basename(d['prefix'])} {d['blend_samples']:,} of "
                  f"{d['built_samples']:,} built samples, {d['epochs_built']:g} epoch(s) "
                  f"of documents shuffled" for d in r["datasets"]) + ".")
    warns = sorted({w for r in results for run in r["runs"] for w in run["warnings"]})
    if warns:
        print()
        print("Warnings logged: " + "; ".join(f"`{w}`" for w in warns))
    print()
    print(f"Machine: {info['model']}, {info['cores']} CPUs, {info.get('mem_gib', '?')} GiB RAM, "
          f"Linux {info['kernel']}. {report['date']}; Python {ver.get('python', '?')}, "
          f"torch {ver.get('torch', '?')} (CPU only), numpy {ver.get('numpy', '?')}, "
          f"megatron-core {ver.get('megatron-core', '?')}.")
    print(f"Command: `{report['command']}`")

    # ---------------------------------------------------------- almr, if timed
    print()
    try:
        with open(ALMR_RESULTS) as f:
            almr = json.load(f)
    except (OSError, ValueError):
        print(f"(no {os.path.relpath(ALMR_RESULTS, ROOT)}: run scripts/bench_mix.py for the "
              f"almr numbers)")
        return
    a_tokens = parse_count(str(almr["mix"]["tokens"]))
    print(f"**almr mix**, from `{os.path.relpath(ALMR_RESULTS, ROOT)}` ({almr['date']}, "
          f"`{almr['command']}`, {almr['machine']['model']}, {almr['machine']['cores']} CPUs; "
          f"--almr {almr['mix']['almr']} --tokens {almr['mix']['tokens']}):")
    print()
    print("| seq_len | samples | almr median s (min–max) | peak RSS MiB | Megatron median s "
          "| Megatron ÷ almr | Megatron build() ÷ almr |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    mine = {r["seq_len"]: r for r in results}
    for a in almr["results"]:
        m = mine.get(a["seq_len"])
        same = (m is not None and m["samples"] == a["samples"]
                and abs(almr["mix"]["almr"] - args.almr) < 1e-12)
        print(f"| {a['seq_len']} | {a['samples']:,} | {a['median_s']:.2f} "
              f"({a['min_s']:.2f}–{a['max_s']:.2f}) | {a['max_rss_mib']:,.0f} | "
              + (f"{m['median_s']:.2f} | {m['median_s'] / a['median_s']:.1f}× | "
                 f"{m['median_build_s'] / a['median_s']:.1f}× |" if same else
                 "— | not comparable | — |"))
    if a_tokens != args.tokens or abs(almr["mix"]["almr"] - args.almr) > 1e-12:
        print()
        print(f"note: results.json was made with --tokens {almr['mix']['tokens']} "
              f"--almr {almr['mix']['almr']}, this run used {args.tokens:,} tokens at ALMR "
              f"{args.almr}; rerun scripts/bench_mix.py with matching options (default "
              f"--mix-tokens 1B) before quoting a ratio.")
    if (almr["machine"].get("model"), almr["machine"].get("cores")) != (info["model"],
                                                                        info["cores"]):
        print()
        print("note: results.json comes from a different machine; the ratio is not meaningful.")


if __name__ == "__main__":
    main()
