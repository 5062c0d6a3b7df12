#!/usr/bin/env python3
"""How long `almr mix` takes to index a training stream of >= 1B tokens.

    python3 scripts/bench_mix.py [--runs 5] [--tokens 2e9] [--mix-tokens 1B]
                                 [--seq-lens 2048,512] [--almr 0.5]
                                 [--shard-tokens 1e9] [--no-build | --bin PATH]

Standard library only. Steps:

1. `cargo build --release --quiet` (skipped with --no-build, or with --bin,
   which runs another almr binary instead of target/release/almr).
2. A real fixture build, once: `almr build pipelines/tokenize_only.toml --out
   target/bench/mix/fixture` (skipped when its manifest.json exists).
3. A synthetic build `target/bench/mix/big/` with the fixture's sources, each
   scaled up by the same whole factor R so that the build holds about
   --tokens tokens: a source's documents are its real fixture document lengths
   (read from the fixture .idx files) repeated R times, split into shards of at
   most --shard-tokens tokens. Each shard is a valid MMIDIDX `.idx` and a
   sparse `.bin` of the right size (`almr mix` reads only the .idx and checks
   its pointers against the .bin size; it never reads tokens). Its
   manifest.json is the fixture's with `shards`, each source's
   `counts`/`shards` and `totals` replaced. Rebuilt only when the fixture or
   the options change (stamp: big/bench-stamp.json).
4. Times `almr mix target/bench/mix/big --name b1 --almr A --seq-len L
   --tokens T` --runs times for each L, as whole processes (wall clock), with
   peak RSS from `/usr/bin/time -f %M` (or os.wait4's ru_maxrss), and reads
   samples, index size, achieved ALMR and window deviation from the sidecar
   big/mix/b1.json.
5. Prints a markdown table and the machine for docs/benchmarks.md, and writes
   every timing to target/bench/mix/results.json.
"""
import argparse, array, datetime, hashlib, itertools, json, os, platform, shutil
import statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "bench", "mix")
FIXTURE = os.path.join(BENCH, "fixture")
BIG = os.path.join(BENCH, "big")
PIPELINE = "pipelines/tokenize_only.toml"
MIX_NAME = "b1"

MAGIC = b"MMIDIDX\x00\x00"
HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, S, D = S + 1
DTYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 8, 7: 4, 8: 2}
SHARD_DOCS_LIMIT = 2**31 - 1  # i32 document numbers in Megatron; keep below

assert HEADER.size == 34
assert array.array("i").itemsize == 4 and array.array("q").itemsize == 8


def parse_count(s):
    """1000, 2e9, 2.5B, 300M, like almr's own parser."""
    t = s.strip()
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}.get(t[-1:].upper())
    return int(round(float(t[:-1]) * scale)) if scale else int(round(float(t)))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- MMIDIDX

def little(a):
    """`a` as little-endian bytes."""
    if sys.byteorder != "little":
        a = array.array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def read_idx(path):
    """(dtype code, int32 lengths) of an MMIDIDX index."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, code, s, d = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != 1:
        raise SystemExit(f"{path}: not an MMIDIDX v1 index")
    if len(data) != HEADER.size + 12 * s + 8 * d:
        raise SystemExit(f"{path}: {len(data)} bytes, expected {HEADER.size + 12 * s + 8 * d}")
    lengths = array.array("i")
    lengths.frombytes(data[HEADER.size:HEADER.size + 4 * s])
    if sys.byteorder != "little":
        lengths.byteswap()
    return code, lengths


def write_shard(prefix, code, lengths):
    """Writes PREFIX.idx for `lengths` (array 'i') and a sparse PREFIX.bin."""
    size = DTYPE_SIZE[code]
    s = len(lengths)
    assert 0 < s <= SHARD_DOCS_LIMIT
    # Byte offset of each document: the running sum of length * dtype size.
    byte_lengths = map(size.__mul__, lengths) if size != 1 else iter(lengths)
    pointers = array.array("q", itertools.accumulate(byte_lengths, initial=0))
    bin_bytes = pointers.pop()  # one past the last document
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    tmp = prefix + ".idx.partial"
    with open(tmp, "wb") as f:
        f.write(HEADER.pack(MAGIC, 1, code, s, s + 1))
        f.write(little(lengths))
        f.write(little(pointers))
        f.write(little(array.array("q", range(s + 1))))
    os.replace(tmp, prefix + ".idx")
    with open(prefix + ".bin", "wb") as f:
        f.truncate(bin_bytes)  # sparse: no blocks allocated
    return bin_bytes // size


# ---------------------------------------------------------------- steps

def build_binary(args):
    if args.no_build or args.bin:
        log("skipping cargo build (--no-build or --bin)")
        return
    log("cargo build --release --quiet")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def make_fixture(almr):
    if os.path.exists(os.path.join(FIXTURE, "manifest.json")):
        return
    if os.path.exists(FIXTURE):
        shutil.rmtree(FIXTURE)  # an interrupted build
    os.makedirs(BENCH, exist_ok=True)
    log(f"almr build {PIPELINE} --out {os.path.relpath(FIXTURE, ROOT)}")
    subprocess.run([almr, "build", PIPELINE, "--out", FIXTURE, "--json"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def fixture_sources(manifest):
    """{source: (dtype code, lengths)} from the fixture shards, checked
    against the manifest."""
    out = {}
    for src in manifest["sources"]:
        name = src["name"]
        lengths = array.array("i")
        code = None
        for sh in manifest["shards"]:
            if sh["source"] != name:
                continue
            c, l = read_idx(os.path.join(FIXTURE, sh["prefix"] + ".idx"))
            if (len(l), sum(l)) != (sh["documents"], sh["tokens"]):
                raise SystemExit(f"{sh['prefix']}: .idx disagrees with the manifest")
            if code is not None and c != code:
                raise SystemExit(f"source {name}: shards of different dtypes")
            code = c
            lengths.extend(l)
        if not lengths:
            raise SystemExit(f"fixture source {name} has no documents")
        out[name] = (code, lengths)
    return out


def scale_counts(counts, reps, docs, tokens):
    """A source's counts for `reps` copies of its documents."""
    c = json.loads(json.dumps(counts))
    c["kept"] = docs
    c["tokens"] = tokens
    c["text_bytes"] = counts.get("text_bytes", 0) * reps
    for key in ("rejected", "malformed"):
        c[key]["total"] *= reps
        c[key]["by_reason"] = {k: v * reps for k, v in c[key]["by_reason"].items()}
    c["changes"] = {k: v * reps for k, v in c["changes"].items()}
    c["read"] = c["kept"] + c["rejected"]["total"] + c["malformed"]["total"]
    return c


def sum_counts(all_counts):
    total = None
    for c in all_counts:
        if total is None:
            total = json.loads(json.dumps(c))
            continue
        for k in ("read", "kept", "tokens", "text_bytes"):
            total[k] += c[k]
        for key in ("rejected", "malformed"):
            total[key]["total"] += c[key]["total"]
            for r, v in c[key]["by_reason"].items():
                total[key]["by_reason"][r] = total[key]["by_reason"].get(r, 0) + v
        for r, v in c["changes"].items():
            total["changes"][r] = total["changes"].get(r, 0) + v
    return total


def make_big(args):
    """Synthesizes target/bench/mix/big; returns its summary."""
    with open(os.path.join(FIXTURE, "manifest.json"), "rb") as f:
        raw = f.read()
    manifest = json.loads(raw)
    sources = fixture_sources(manifest)
    fixture_tokens = sum(sum(l) for _, l in sources.values())
    reps = max(1, round(args.tokens / fixture_tokens))
    stamp = {
        "fixture_manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "reps": reps,
        "shard_tokens": args.shard_tokens,
        "version": 1,
    }
    stamp_path = os.path.join(BIG, "bench-stamp.json")
    try:
        with open(stamp_path) as f:
            old = json.load(f)
        if old["stamp"] == stamp:
            log(f"reusing {os.path.relpath(BIG, ROOT)} ({old['summary']['tokens']:,} tokens)")
            return old["summary"]
    except (OSError, ValueError, KeyError):
        pass

    log(f"synthesizing {os.path.relpath(BIG, ROOT)}: fixture has {fixture_tokens:,} tokens, "
        f"x{reps} -> {fixture_tokens * reps:,}")
    if os.path.exists(BIG):
        shutil.rmtree(BIG)
    t0 = time.perf_counter()
    shards = []
    per_source = {}
    for src in manifest["sources"]:
        name = src["name"]
        code, base = sources[name]
        base_tokens = sum(base)
        # Whole repetitions of the fixture documents per shard.
        per_shard = max(1, min(args.shard_tokens // max(base_tokens, 1),
                               SHARD_DOCS_LIMIT // len(base)))
        done, k = 0, 0
        docs = tokens = 0
        while done < reps:
            n = min(per_shard, reps - done)
            prefix = f"shards/{name}/{name}-{k:05d}"
            lengths = base * n
            t = write_shard(os.path.join(BIG, prefix), code, lengths)
            shards.append({"prefix": prefix, "source": name, "documents": len(lengths), "tokens": t})
            docs += len(lengths)
            tokens += t
            done += n
            k += 1
        per_source[name] = {"shards": k, "documents": docs, "tokens": tokens}
        log(f"  {name}: {k} shard(s), {docs:,} documents, {tokens:,} tokens "
            f"(fixture {len(base):,} documents, {base_tokens:,} tokens)")

    new_counts = []
    for src in manifest["sources"]:
        p = per_source[src["name"]]
        src["counts"] = scale_counts(src["counts"], reps, p["documents"], p["tokens"])
        src["shards"] = p["shards"]
        new_counts.append(src["counts"])
    manifest["totals"] = sum_counts(new_counts)
    manifest["shards"] = shards
    # The big build's files have no checksums worth computing (the .bin files
    # are sparse); the mixer does not read `outputs`.
    manifest["outputs"] = []
    with open(os.path.join(BIG, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    idx_bytes = sum(os.path.getsize(os.path.join(BIG, s["prefix"] + ".idx")) for s in shards)
    summary = {
        "fixture_tokens": fixture_tokens,
        "fixture_documents": sum(len(l) for _, l in sources.values()),
        "reps": reps,
        "tokens": sum(s["tokens"] for s in shards),
        "documents": sum(s["documents"] for s in shards),
        "shards": len(shards),
        "idx_bytes": idx_bytes,
        "sources": {
            s["name"]: dict(per_source[s["name"]], additional=s["additional"], language=s["language"])
            for s in manifest["sources"]
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }
    with open(stamp_path, "w") as f:
        json.dump({"stamp": stamp, "summary": summary}, f, indent=2)
    log(f"  wrote {len(shards)} shards, {idx_bytes / 1e6:.0f} MB of .idx in {summary['seconds']} s")
    return summary


def run_mix(almr, seq_len, args):
    """One timed `almr mix`: (wall s, peak RSS KiB, user s, sys s, stdout)."""
    cmd = [almr, "mix", BIG, "--name", MIX_NAME, "--almr", str(args.almr),
           "--seq-len", str(seq_len), "--tokens", args.mix_tokens, "--force"]
    gnu_time = "/usr/bin/time"
    if os.access(gnu_time, os.X_OK):
        with tempfile.NamedTemporaryFile("r", dir=BENCH, suffix=".time") as tf:
            t = time.perf_counter()
            p = subprocess.run([gnu_time, "-f", "%M %U %S", "-o", tf.name] + cmd, cwd=ROOT,
                               capture_output=True, text=True)
            wall = time.perf_counter() - t
            fields = tf.read().split()
        if p.returncode != 0:
            raise SystemExit(f"almr mix failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        # GNU time prints "Command exited with non-zero status" lines first on
        # failure; on success the last three fields are ours.
        rss, user, sys_ = int(fields[-3]), float(fields[-2]), float(fields[-1])
        return wall, rss, user, sys_, p.stdout
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout = out.read()
        if p.returncode != 0:
            raise SystemExit(f"almr mix failed ({p.returncode}):\n{stdout}{err.read()}")
        return wall, ru.ru_maxrss, ru.ru_utime, ru.ru_stime, stdout


def machine():
    info = {"cores": os.cpu_count(), "model": platform.processor() or "?"}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "Model name":
                info["model"] = v.strip()
            elif k.strip() == "CPU(s)":
                info["cores"] = int(v.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        info["mem_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    info["kernel"] = platform.release()
    return info


def versions(almr):
    def out(cmd):
        try:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    commit = out(["git", "rev-parse", "--short", "HEAD"])
    if out(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " + uncommitted changes"
    st = os.stat(almr)
    built = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
    return {"almr": out([almr, "--version"]), "binary": os.path.relpath(almr, ROOT),
            "binary_built": built.strftime("%Y-%m-%d %H:%M UTC"), "tree": commit,
            "rustc": out(["rustc", "--version"])}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per seq-len (default 5)")
    ap.add_argument("--tokens", type=parse_count, default=parse_count("2e9"),
                    help="about this many tokens in the synthetic build (default 2e9)")
    ap.add_argument("--mix-tokens", default="1B", help="almr mix --tokens (default 1B)")
    ap.add_argument("--seq-lens", default="2048,512", help="comma-separated (default 2048,512)")
    ap.add_argument("--almr", type=float, default=0.5, help="almr mix --almr (default 0.5)")
    ap.add_argument("--shard-tokens", type=parse_count, default=parse_count("1e9"),
                    help="at most this many tokens per synthetic shard (default 1e9)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--bin", help="use this almr binary instead of building "
                    "target/release/almr (implies --no-build)")
    args = ap.parse_args()
    seq_lens = [int(x) for x in args.seq_lens.split(",") if x]
    if parse_count(args.mix_tokens) < 10**9:
        log(f"note: --mix-tokens {args.mix_tokens} is under 1B")
    almr = os.path.abspath(args.bin or os.path.join(ROOT, "target", "release", "almr"))

    build_binary(args)
    make_fixture(almr)
    big = make_big(args)

    results = []
    for seq_len in seq_lens:
        runs = []
        for i in range(args.runs):
            load = loadavg()
            wall, rss, user, sys_, stdout = run_mix(almr, seq_len, args)
            runs.append({"wall_s": wall, "max_rss_kib": rss, "user_s": user, "sys_s": sys_,
                         "loadavg_before": load})
            log(f"  seq_len {seq_len} run {i + 1}/{args.runs}: {wall:.2f} s wall, "
                f"{user + sys_:.2f} s CPU, {rss / 1024:.0f} MiB peak RSS (load {load})")
        with open(os.path.join(BENCH, f"mix-{seq_len}.txt"), "w") as f:
            f.write(stdout)
        with open(os.path.join(BIG, "mix", MIX_NAME + ".json")) as f:
            side = json.load(f)
        index_path = os.path.join(BIG, side["index"]["path"])
        with open(index_path, "rb") as f:
            magic, _, l, _, n, v = struct.unpack("<8s5Q", f.read(48))
        if (magic, l, n, v) != (b"ALMRMIX\0", seq_len, side["samples"], side["valid_samples"]):
            raise SystemExit(f"{index_path}: header {magic, l, n, v} disagrees with the sidecar")
        walls = [r["wall_s"] for r in runs]
        results.append({
            "seq_len": seq_len,
            "runs": runs,
            "median_s": statistics.median(walls),
            "min_s": min(walls),
            "max_s": max(walls),
            "median_cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in runs),
            "max_rss_mib": max(r["max_rss_kib"] for r in runs) / 1024,
            "samples": side["samples"],
            "tokens": side["tokens"],
            "valid_samples": side["valid_samples"],
            "index_bytes": side["index"]["bytes"],
            "index_file_bytes": os.path.getsize(index_path),
            "achieved_almr": side["achieved_almr"],
            "max_window_deviation": side["max_window_deviation"],
            "epochs": {s["name"]: s["epochs"] for s in side["sources"]},
        })

    info = machine()
    ver = versions(almr)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": info,
        "versions": ver,
        "command": " ".join(sys.argv),
        "mix": {"almr": args.almr, "tokens": args.mix_tokens, "name": MIX_NAME},
        "build": big,
        "results": results,
    }
    with open(os.path.join(BENCH, "results.json"), "w") as f:
        json.dump(report, f, indent=2)

    # ---- markdown
    print(f"**Build** (`{os.path.relpath(BIG, ROOT)}`, synthetic): the sources of "
          f"`{PIPELINE}`, each repeated x{big['reps']:,}: {big['tokens']:,} tokens in "
          f"{big['documents']:,} documents, {big['shards']} shards, "
          f"{big['idx_bytes'] / 1e6:,.0f} MB of .idx.")
    print()
    print("| source | additional | documents | tokens | shards |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, s in big["sources"].items():
        print(f"| {name} | {'yes' if s['additional'] else 'no'} | {s['documents']:,} | "
              f"{s['tokens']:,} | {s['shards']} |")
    print()
    print(f"**`almr mix` --almr {args.almr} --tokens {args.mix_tokens}** "
          f"(whole process, wall clock, {args.runs} runs each):")
    print()
    print("| seq_len | samples | index MB | median s (min–max) | CPU s | peak RSS MiB "
          "| achieved ALMR | max window dev. | epochs (max) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['seq_len']} | {r['samples']:,} | {r['index_bytes'] / 1e6:,.1f} | "
              f"{r['median_s']:.2f} ({r['min_s']:.2f}–{r['max_s']:.2f}) | {r['median_cpu_s']:.2f} | "
              f"{r['max_rss_mib']:,.0f} | {r['achieved_almr']:.6f} | "
              f"{r['max_window_deviation']:.4f} | {max(r['epochs'].values()):.3f} |")
    print()
    print(f"Machine: {info['model']}, {info['cores']} CPUs, {info.get('mem_gib', '?')} GiB RAM, "
          f"Linux {info['kernel']}. {report['date']}; {ver['almr']} (`{ver['binary']}`, built "
          f"{ver['binary_built']}; working tree at {ver['tree']}); {ver['rustc']}.")
    print(f"Command: `python3 scripts/bench_mix.py {' '.join(sys.argv[1:])}`".rstrip())
    for r in results:
        if r["index_file_bytes"] != r["index_bytes"]:
            print(f"warning: seq_len {r['seq_len']}: index file has {r['index_file_bytes']} bytes, "
                  f"the sidecar says {r['index_bytes']}")


if __name__ == "__main__":
    main()
