#!/usr/bin/env python3
"""Check almr's shards with Megatron-LM's own reader (and, optionally, writer).

Usage:
    check_megatron.py OUT_DIR [--golden GOLDEN.jsonl.gz] [--almr BIN]
                      [--inspect-sample K] [--rewrite-with-megatron]
                      [--rewrite-dir DIR]

OUT_DIR is an `almr build` output directory. For every shard listed under
"shards" in OUT_DIR/manifest.json, this opens PREFIX with
megatron.core.datasets.indexed_dataset.IndexedDataset (the real package from
megatron-core, which needs torch) and checks:

  * the index dtype equals the manifest's tokenizer dtype;
  * len(ds) == the shard's document count (manifest and docs.parquet);
  * ds.sequence_lengths == the docs.parquet n_tokens column;
  * ds.document_indices == [0, 1, ..., N] (one sequence per document);
  * the sequence pointers are the cumulative byte offsets of n_tokens;
  * every ds[i] (and the slice ds[0:N]) equals the ids read with plain numpy
    from PREFIX.bin, cut at the cumulative n_tokens offsets;
  * every document ends with the manifest's eos_id;
  * IndexedDataset.get(idx, offset, length) partial reads on a few documents
    equal the same slices of the numpy reading;
  * `almr inspect PREFIX --doc N --json` returns the same tokens for a sample
    of documents (when an almr binary is found);
  * with --golden, ds[i] == golden ids + [eos_id], matched through the
    docs.parquet (file, line) columns (golden lines are {file, line, ids},
    ids without EOS);
  * with --rewrite-with-megatron, Megatron's IndexedDatasetBuilder writes the
    same documents to a separate prefix, and its .bin and .idx must be
    byte-for-byte identical to ours (hex dumps of the first difference are
    printed otherwise).

With --mix NAME, the weights of `almr mix --export megatron` go through
Megatron's build_blending_indices (see check_blend).

With --recipe ARGS_FILE (the pretrain_gpt.py arguments that
scripts/megatron_cpt.sbatch writes to RUN_DIR/pretrain_gpt.args) and
--megatron-lm DIR (a Megatron-LM checkout), the arguments are parsed and
validated by Megatron-LM's own parse_args/validate_args, and the train,
valid and test datasets are built as pretrain_gpt.py builds them
(core_gpt_dataset_config_from_args, BlendedMegatronDatasetBuilder over
GPTDataset, on CPU); the samples each source gets are compared with the mix
sidecar (see check_recipe).

Prints one summary line per shard and exits 1 on any mismatch.
"""

import argparse
import contextlib
import gzip
import io
import logging
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from importlib import metadata

import numpy as np
import pyarrow.parquet as pq

with warnings.catch_warnings():
    # megatron.core warns at import time that Transformer Engine / Apex are
    # absent; neither is used by the indexed dataset code.
    warnings.simplefilter("ignore")
    import torch
    from megatron.core.datasets import indexed_dataset as mid
    from megatron.core.datasets.indexed_dataset import (
        IndexedDataset,
        IndexedDatasetBuilder,
    )

# almr's manifest dtype names -> numpy
DTYPES = {
    "u8": np.uint8, "uint8": np.uint8,
    "i8": np.int8, "int8": np.int8,
    "u16": np.uint16, "uint16": np.uint16,
    "i16": np.int16, "int16": np.int16,
    "i32": np.int32, "int32": np.int32,
    "i64": np.int64, "int64": np.int64,
}


class Failures:
    def __init__(self):
        self.items = []

    def add(self, shard, msg):
        self.items.append(f"{shard}: {msg}")
        print(f"  MISMATCH {shard}: {msg}")


def versions():
    out = [f"python {sys.version.split()[0]}"]
    for pkg in ("megatron-core", "torch", "numpy", "pyarrow", "transformers"):
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg} ?")
    return ", ".join(out)


def load_golden(path):
    golden = {}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                g = json.loads(line)
                golden[(g["file"], int(g["line"]))] = g["ids"]
    return golden


def find_almr(arg):
    if arg:
        return arg if arg != "none" else None
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (
        os.path.join(here, "..", "target", "release", "almr"),
        os.path.join(here, "..", "target", "debug", "almr"),
    ):
        if os.access(cand, os.X_OK):
            return os.path.normpath(cand)
    return shutil.which("almr")


def hexdump(data, base):
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        lines.append(f"    {base + i:08x}  {chunk.hex(' ')}")
    return "\n".join(lines)


def idx_region(off, n_seq, n_docidx):
    """Name the .idx region that byte offset `off` falls in."""
    regions = [
        ("magic 'MMIDIDX\\x00\\x00'", 9),
        ("version u64", 8),
        ("dtype code u8", 1),
        ("sequence count u64", 8),
        ("document count u64", 8),
        ("sequence lengths i32[]", 4 * n_seq),
        ("sequence pointers i64[]", 8 * n_seq),
        ("document indices i64[]", 8 * n_docidx),
    ]
    start = 0
    for name, size in regions:
        if off < start + size:
            return f"{name} (+{off - start})"
        start += size
    return "past the end of the expected layout"


def compare_bytes(ours_path, theirs_path, describe=None):
    """Return None if identical, else a description with hex dumps."""
    a = open(ours_path, "rb").read()
    b = open(theirs_path, "rb").read()
    if a == b:
        return None
    n = min(len(a), len(b))
    first = next((i for i in range(n) if a[i] != b[i]), n)
    lo = max(0, (first // 16) * 16 - 16)
    hi = min(max(len(a), len(b)), lo + 64)
    msg = [
        f"{os.path.basename(ours_path)} differs: ours {len(a)} bytes, "
        f"megatron {len(b)} bytes, first difference at byte {first} (0x{first:x})"
    ]
    if describe:
        msg.append(f"    region: {describe(first)}")
    msg.append("    ours:")
    msg.append(hexdump(a[lo:hi], lo))
    msg.append("    megatron:")
    msg.append(hexdump(b[lo:hi], lo))
    return "\n".join(msg)


def check_shard(out_dir, entry, manifest, args, golden, almr, fails, stats):
    prefix_rel = entry["prefix"]
    prefix = os.path.join(out_dir, prefix_rel)
    name = prefix_rel
    tok = manifest["tokenizer"]
    want_dtype = DTYPES.get(tok["dtype"])
    eos_id = int(tok["eos_id"])
    nfail0 = len(fails.items)
    notes = []

    if want_dtype is None:
        fails.add(name, f"unknown manifest dtype {tok['dtype']!r}")
        return
    docs = pq.read_table(prefix + ".docs.parquet").to_pydict()
    n_tokens = np.asarray(docs["n_tokens"], dtype=np.int64)
    n = len(n_tokens)

    # --- Megatron's reader -------------------------------------------------
    ds = IndexedDataset(prefix)  # mmap=True, the default used in training
    ds_file = IndexedDataset(prefix, mmap=False)  # the _FileBinReader path

    if ds.index.dtype is not want_dtype:
        fails.add(name, f"dtype: megatron {ds.index.dtype.__name__}, manifest {tok['dtype']}")
    if len(ds) != n or entry["documents"] != n:
        fails.add(name, f"len: megatron {len(ds)}, docs.parquet {n}, manifest {entry['documents']}")
    if list(docs["doc_index"]) != list(range(n)):
        fails.add(name, "docs.parquet doc_index is not 0..N-1")
    if not np.array_equal(np.asarray(ds.sequence_lengths, dtype=np.int64), n_tokens):
        fails.add(name, "sequence_lengths != docs.parquet n_tokens")
    if not np.array_equal(ds.document_indices, np.arange(n + 1, dtype=np.int64)):
        fails.add(name, f"document_indices != 0..{n}: {ds.document_indices[:8]}...")
    itemsize = np.dtype(want_dtype).itemsize
    ends = np.cumsum(n_tokens)
    starts = ends - n_tokens
    if not np.array_equal(ds.index.sequence_pointers, starts * itemsize):
        fails.add(name, "sequence_pointers != cumulative byte offsets of n_tokens")
    total = int(ends[-1]) if n else 0
    if entry.get("tokens") is not None and entry["tokens"] != total:
        fails.add(name, f"manifest tokens {entry['tokens']} != sum(n_tokens) {total}")

    # --- independent reading: plain numpy over .bin ------------------------
    flat = np.fromfile(prefix + ".bin", dtype=want_dtype)
    if flat.size != total:
        fails.add(name, f".bin holds {flat.size} tokens, sum(n_tokens) is {total}")
    ref = [flat[s:e] for s, e in zip(starts, ends)]

    bad_items = 0
    for i in range(n):
        got = ds[i]
        if got.dtype != want_dtype or not np.array_equal(got, ref[i]):
            bad_items += 1
            if bad_items <= 3:
                fails.add(name, f"ds[{i}] != numpy reading (len {got.size} vs {ref[i].size})")
        if not np.array_equal(ds_file[i], ref[i]):
            bad_items += 1
            if bad_items <= 3:
                fails.add(name, f"ds(mmap=False)[{i}] != numpy reading")
        if ref[i].size == 0 or int(ref[i][-1]) != eos_id:
            bad_items += 1
            if bad_items <= 3:
                fails.add(name, f"doc {i} does not end with eos_id {eos_id}")
    if bad_items > 3:
        fails.add(name, f"... {bad_items} item mismatches in all")
    if n:
        sl = ds[0:n]
        if len(sl) != n or any(not np.array_equal(a, b) for a, b in zip(sl, ref)):
            fails.add(name, "slice ds[0:N] != numpy reading")
    stats["items"] += n

    # --- partial reads: IndexedDataset.get(idx, offset, length) ------------
    n_get = 0
    if n:
        rng = np.random.default_rng(1234)
        picks = sorted({0, n // 2, n - 1, *rng.integers(0, n, size=min(5, n)).tolist()})
        for i in picks:
            L = int(n_tokens[i])
            cases = [(0, None), (0, 1), (L - 1, 1), (L - 1, None)]
            if L > 2:
                off = int(rng.integers(1, L - 1))
                cases += [(off, None), (off, int(rng.integers(1, L - off + 1)))]
            for off, length in cases:
                got = ds.get(i, offset=off, length=length)
                want = ref[i][off:] if length is None else ref[i][off:off + length]
                n_get += 1
                if not np.array_equal(got, want):
                    fails.add(name, f"get({i}, offset={off}, length={length}) != numpy slice")
    notes.append(f"get()={n_get}")

    # --- almr inspect, for a sample ----------------------------------------
    if almr and args.inspect_sample > 0 and n:
        k = min(args.inspect_sample, n)
        sample = sorted({int(x) for x in np.linspace(0, n - 1, k).round()})
        for i in sample:
            r = subprocess.run(
                [almr, "inspect", prefix, "--doc", str(i), "--json"],
                capture_output=True, text=True,
            )
            if r.returncode != 0:
                fails.add(name, f"almr inspect --doc {i} failed: {r.stderr.strip()[:200]}")
                continue
            doc = json.loads(r.stdout)["document"]
            if not np.array_equal(np.asarray(doc["tokens"], dtype=np.int64),
                                  ds[i].astype(np.int64)):
                fails.add(name, f"almr inspect --doc {i} tokens != megatron ds[{i}]")
            prov = doc.get("provenance") or {}
            if prov.get("n_tokens") not in (None, int(n_tokens[i])):
                fails.add(name, f"almr inspect --doc {i} n_tokens != docs.parquet")
        notes.append(f"inspect={len(sample)}")
    else:
        notes.append("inspect=skipped")

    # --- golden ids ---------------------------------------------------------
    if golden is not None:
        matched = missing = bad = 0
        for i, (f, line) in enumerate(zip(docs["file"], docs["line"])):
            ids = golden.get((f, int(line)))
            if ids is None:
                missing += 1
                if missing <= 3:
                    fails.add(name, f"doc {i} ({f}:{line}) has no golden entry")
                continue
            stats["golden_seen"].add((f, int(line)))
            want = np.asarray(ids + [eos_id], dtype=np.int64)
            if np.array_equal(ds[i].astype(np.int64), want):
                matched += 1
            else:
                bad += 1
                if bad <= 3:
                    got = ds[i].astype(np.int64)
                    k = next((j for j in range(min(got.size, want.size)) if got[j] != want[j]),
                             min(got.size, want.size))
                    fails.add(name, f"doc {i} ({f}:{line}) != golden+[eos]: lengths "
                                    f"{got.size}/{want.size}, first difference at token {k}")
        notes.append(f"golden={matched}/{n}")

    # --- Megatron's own writer, byte for byte ------------------------------
    if args.rewrite_with_megatron:
        rdir = os.path.join(stats["rewrite_dir"], os.path.dirname(prefix_rel))
        os.makedirs(rdir, exist_ok=True)
        mprefix = os.path.join(stats["rewrite_dir"], prefix_rel)
        builder = IndexedDatasetBuilder(mid.get_bin_path(mprefix), dtype=want_dtype)
        for i in range(n):
            builder.add_item(torch.from_numpy(np.array(ds[i])))
            builder.end_document()
        builder.finalize(mid.get_idx_path(mprefix))
        same = True
        for ext, describe in (
            (".bin", lambda off: f"token {off // itemsize} (+{off % itemsize})"),
            (".idx", lambda off: idx_region(off, n, n + 1)),
        ):
            diff = compare_bytes(prefix + ext, mprefix + ext, describe)
            if diff:
                same = False
                fails.add(name, "megatron writer: " + diff)
        if same:
            # And Megatron reads its own copy back the same way, for completeness.
            mds = IndexedDataset(mprefix)
            if len(mds) != n or any(not np.array_equal(mds[i], ref[i]) for i in range(n)):
                fails.add(name, "megatron-written copy reads back differently")
        notes.append("megatron-writer=" + ("identical" if same else "DIFFERENT"))

    ok = len(fails.items) == nfail0
    print(
        f"{'ok  ' if ok else 'FAIL'} {name}: dtype={ds.index.dtype.__name__} docs={n} "
        f"tokens={total} bin={os.path.getsize(prefix + '.bin')}B "
        f"idx={os.path.getsize(prefix + '.idx')}B " + " ".join(notes)
    )
    del ds, ds_file


def check_blend(out_dir, name, fails):
    """Feeds the weights of `almr mix --export megatron` to Megatron's own
    build_blending_indices and compares the samples per source with the mix."""
    import numpy
    from megatron.core.datasets import helpers

    with open(os.path.join(out_dir, "mix", name + ".json")) as f:
        side = json.load(f)
    with open(os.path.join(out_dir, "mix", name + ".megatron.txt")) as f:
        words = f.read().split()
    weights = numpy.array([float(w) for w in words[0::2]], dtype=numpy.float64)
    prefixes = words[1::2]
    n = side["samples"]
    index = numpy.zeros(n, dtype=numpy.int16)
    sample_index = numpy.zeros(n, dtype=numpy.int64)
    helpers.build_blending_indices(index, sample_index, weights, len(weights), n, False)
    counts = numpy.bincount(index, minlength=len(weights))
    additional = numpy.zeros(n, dtype=numpy.int64)
    for s in side["sources"]:
        got = sum(int(counts[k]) for k, p in enumerate(prefixes)
                  if f"/shards/{s['name']}/" in p)
        ok = abs(got - s["samples"]) <= 1
        print(f"blend {name}: {s['name']}: almr {s['samples']} samples, Megatron {got}"
              + ("" if ok else "  <-- differs by more than one"))
        if not ok:
            fails.add(name, f"{s['name']}: {got} != {s['samples']}")
        if s["additional"]:
            for k, p in enumerate(prefixes):
                if f"/shards/{s['name']}/" in p:
                    additional += index == k
    prefix = numpy.cumsum(additional)
    worst = numpy.max(numpy.abs(prefix - side["target_almr"] * numpy.arange(1, n + 1)))
    print(f"blend {name}: Megatron's stream: achieved ALMR {prefix[-1] / n:.6f} "
          f"(almr {side['achieved_almr']:.6f}); worst prefix off by {worst:.3f} samples")


def read_docs(prefix, dtype):
    """Every document of shard PREFIX, read with plain numpy through
    docs.parquet's n_tokens (not through Megatron)."""
    n_tokens = np.asarray(pq.read_table(prefix + ".docs.parquet").column("n_tokens").to_pylist(),
                          dtype=np.int64)
    flat = np.fromfile(prefix + ".bin", dtype=dtype)
    ends = np.cumsum(n_tokens)
    return [flat[e - n:e] for n, e in zip(n_tokens, ends)]


def tree(path):
    """Relative paths, sizes and modification times of every file under `path`."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            st = os.stat(full)
            out[os.path.relpath(full, path)] = (st.st_size, st.st_mtime_ns)
    return out


def check_recipe(out_dir, manifest, args, fails):
    """Parses the arguments of scripts/megatron_cpt.sbatch with Megatron-LM's
    own parser and builds the datasets pretrain_gpt.py would build from them,
    then compares them with the almr mix they name."""
    tag = "recipe"
    megatron_lm = os.path.abspath(args.megatron_lm)
    # megatron.training and pretrain_gpt come from the checkout; megatron.core
    # stays the installed package (appended, so it is found first).
    sys.path.append(megatron_lm)
    os.environ["WORLD_SIZE"] = str(args.world_size)
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "1")  # megatron_cpt.sbatch exports it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.blended_megatron_dataset_builder import (
            BlendedMegatronDatasetBuilder,
        )
        from megatron.core.datasets.gpt_dataset import GPTDataset
        from megatron.training.arguments import parse_args, validate_args
        from megatron.training.global_vars import set_args
        from megatron.training.tokenizer.tokenizer import _vocab_size_with_padding
        from megatron.training.training import (
            get_train_valid_test_num_samples,
            update_train_iters,
        )
        import pretrain_gpt

    with open(args.recipe) as f:
        argv = [line for line in f.read().split("\n") if line != ""]
    print(f"recipe: {args.recipe}: {len(argv)} arguments; Megatron-LM {megatron_lm}; "
          f"WORLD_SIZE={args.world_size}")
    saved_argv = sys.argv
    sys.argv = ["pretrain_gpt.py"] + argv
    # validate_args asks the GPU for its architecture; there is none here, so
    # it is told the one given (--gpu-arch: 9 is Hopper, H100/H200).
    import megatron.training.arguments as margs_mod
    margs_mod.get_device_arch_version = lambda: args.gpu_arch
    said = io.StringIO()  # Megatron prints every argument; shown on failure only
    try:
        with contextlib.redirect_stdout(said):
            margs = parse_args()  # exits 2 on any argument it does not know
            validate_args(margs)
            set_args(margs)
            update_train_iters(margs)
    except BaseException:
        print(said.getvalue())
        raise
    finally:
        sys.argv = saved_argv
    print(f"recipe: parse_args and validate_args accept every argument: TP {margs.tensor_model_parallel_size} "
          f"PP {margs.pipeline_model_parallel_size} DP {margs.data_parallel_size}, "
          f"{margs.num_layers} layers, hidden {margs.hidden_size}, ffn {margs.ffn_hidden_size}, "
          f"{margs.num_attention_heads} heads, {margs.num_query_groups} query groups, "
          f"rope base {margs.rotary_base:g}, {margs.normalization}, swiglu {margs.swiglu}, "
          f"bias {margs.add_bias_linear}, untied {margs.untie_embeddings_and_output_weights}, "
          f"params {margs.params_dtype}")
    print(f"recipe: lr {margs.lr:.6g} -> min {margs.min_lr:.6g}, {margs.lr_decay_style} "
          f"({margs.lr_wsd_decay_style}): warmup {margs.lr_warmup_samples} samples, decay over the "
          f"last {margs.lr_wsd_decay_samples} of {margs.lr_decay_samples}; {margs.train_samples} "
          f"samples = {margs.train_iters} steps of {margs.global_batch_size}; "
          f"load {margs.load} (finetune {margs.finetune})")

    # The mix the arguments name.
    data_args = os.path.abspath(margs.data_args_path)
    name = os.path.basename(data_args)
    if not name.endswith(".megatron.txt"):
        fails.add(tag, f"--data-args-path {data_args} is not an OUT/mix/NAME.megatron.txt")
        return
    name = name[: -len(".megatron.txt")]
    mix_dir = os.path.join(out_dir, "mix")
    if os.path.dirname(data_args) != os.path.realpath(mix_dir):
        fails.add(tag, f"--data-args-path {data_args} is not under {mix_dir}")
    with open(os.path.join(mix_dir, name + ".json")) as f:
        side = json.load(f)
    if margs.seq_length != side["seq_len"]:
        fails.add(tag, f"--seq-length {margs.seq_length} != the mix's seq_len {side['seq_len']}")
    if not margs.train_iters:
        fails.add(tag, f"{margs.train_samples} samples are not one global batch of "
                       f"{margs.global_batch_size}: Megatron would train 0 steps")
    if margs.train_samples != side["samples"]:
        fails.add(tag, f"--train-samples {margs.train_samples} != the mix's samples {side['samples']}")
    if args.recipe_sweep:
        with open(os.path.join(args.recipe_sweep, "recommendation.json")) as f:
            rec = json.load(f)["recommended"]
        ok_r = rec is not None and rec["almr"] == side["target_almr"]
        ok_lr = rec is not None and rec["lr"] == margs.lr
        print(f"recipe: {args.recipe_sweep}/recommendation.json: almr {rec and rec['almr']} "
              f"(mix target {side['target_almr']}), lr {rec and rec['lr']} (--lr {margs.lr})")
        if not (ok_r and ok_lr):
            fails.add(tag, "the mix's ALMR or --lr is not the sweep's recommendation")

    # The tokenizer, as pretrain_gpt.py builds it.
    logging.getLogger("megatron").setLevel(logging.WARNING)
    tok = manifest["tokenizer"]
    config = pretrain_gpt.core_gpt_dataset_config_from_args(margs)
    padded = _vocab_size_with_padding(config.tokenizer.vocab_size, margs, logging_enabled=False)
    print(f"recipe: tokenizer {margs.tokenizer_type} {margs.tokenizer_model}: vocab "
          f"{config.tokenizer.vocab_size} (padded for TP {margs.tensor_model_parallel_size}: "
          f"{padded}), eod {config.tokenizer.eod}; manifest: vocab {tok['vocab_size']}, "
          f"eos {tok['eos']!r} = {tok['eos_id']}")
    if config.tokenizer.vocab_size != tok["vocab_size"] or config.tokenizer.eod != tok["eos_id"]:
        fails.add(tag, "Megatron's tokenizer does not have the manifest's vocab size and EOS id")

    # The datasets, as pretrain_gpt.py builds them. With a cache path Megatron
    # asks torch.distributed for its rank: this process is rank 0 of a
    # one-process group (gloo, on CPU).
    if not torch.distributed.is_initialized():
        store = tempfile.NamedTemporaryFile(prefix="almr-pg-", delete=False).name
        os.unlink(store)
        torch.distributed.init_process_group("gloo", init_method="file://" + store,
                                             rank=0, world_size=1)
    before = tree(out_dir)
    sizes = get_train_valid_test_num_samples()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, valid, test = BlendedMegatronDatasetBuilder(
            GPTDataset, sizes, lambda: True, config
        ).build()
    after = tree(out_dir)
    touched = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    print(f"recipe: BlendedMegatronDatasetBuilder(GPTDataset, {list(sizes)}) with --split "
          f"{margs.split}: train {len(train) if train is not None else None}, valid "
          f"{len(valid) if valid is not None else None}, test "
          f"{len(test) if test is not None else None}; cache {margs.data_cache_path}")
    if touched:
        fails.add(tag, f"Megatron wrote into OUT: {touched[:3]}")
    # Megatron's blend holds sum(ceil(weight * N)) samples, up to one more
    # than N per dataset; training reads its first N at most.
    n = side["samples"]
    if train is None or not n <= len(train) < n + len(train.datasets):
        fails.add(tag, f"train dataset has {train and len(train)} samples, the mix {n}")
        return
    if valid is not None or test is not None:
        print("recipe: note: Megatron's valid/test documents are a range of each shard, "
              "not almr's held-out documents")

    # Samples per source, against the sidecar.
    counts = np.bincount(np.asarray(train.dataset_index)[:n], minlength=len(train.datasets))
    by_prefix = {os.path.realpath(ds.dataset_path): k for k, ds in enumerate(train.datasets)}
    dtype = DTYPES[tok["dtype"]]
    L = margs.seq_length + 1
    n_blend = min(len(train), 64)
    for k in range(n_blend):
        item = train[k]
        t, lab = item["tokens"].numpy(), item["labels"].numpy()
        if t.size != margs.seq_length or not np.array_equal(t[1:], lab[:-1]):
            fails.add(tag, f"train[{k}]: tokens/labels are not one window of {L} tokens")
    for s in side["sources"]:
        ks = [by_prefix.get(os.path.realpath(os.path.join(out_dir, sh["prefix"])))
              for sh in s["shards"] if sh["tokens"] > 0]
        if s["samples"] == 0:
            got = sum(int(counts[k]) for k in ks if k is not None)
            print(f"recipe {name}: {s['name']}: no samples in the mix; Megatron {got}")
            continue
        if any(k is None for k in ks):
            fails.add(tag, f"{s['name']}: a shard of the mix is not among Megatron's datasets")
            continue
        got = sum(int(counts[k]) for k in ks)
        ok = abs(got - s["samples"]) <= 1
        if not ok:
            fails.add(tag, f"{s['name']}: Megatron {got} samples, almr {s['samples']}")
        # The windows Megatron reads, against the shard read with numpy.
        windows = 0
        per_epoch_all = 0
        for k in ks:
            ds = train.datasets[k]
            prefix = os.path.realpath(ds.dataset_path)
            docs = read_docs(prefix, dtype)
            per_epoch_all += sum(d.size for d in docs)
            if len(ds.indices) != len(docs):
                fails.add(tag, f"{s['name']}: Megatron uses {len(ds.indices)} of {len(docs)} documents")
            for j in np.linspace(0, len(ds) - 1, min(16, len(ds))).round().astype(int):
                text, ids = ds._query_document_sample_shuffle_indices(int(j))
                text = np.asarray(text)
                cat = np.concatenate([docs[int(d)] for d in ids])
                first = docs[int(ids[0])].size
                hit = text.size == L and any(
                    np.array_equal(cat[o:o + L], text) for o in range(first))
                windows += 1
                if not hit:
                    fails.add(tag, f"{s['name']}: sample {j} of {prefix} is not a window of "
                                   f"{L} tokens over its documents {list(ids)}")
        print(f"recipe {name}: {s['name']}: almr {s['samples']} samples, Megatron {got} of its first {n}"
              + ("" if ok else "  <-- differs by more than one")
              + f"; {windows} windows of {L} tokens = the shard's; Megatron "
                f"{got * margs.seq_length / per_epoch_all:.3f} epochs of {s['documents']} "
                f"documents, almr {s['epochs']:.3f} of {s['train_documents']} "
                f"({s['valid_documents']} held out)")
    print(f"recipe {name}: {n_blend} blended samples: tokens and labels one window of {L} tokens; "
          f"OUT unchanged ({len(before)} files)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="an `almr build` output directory (with manifest.json)")
    ap.add_argument("--golden", help="golden ids, JSON lines {file, line, ids} (.gz ok)")
    ap.add_argument("--almr", help="almr binary for `inspect` cross-checks "
                    "(default: target/release/almr, then PATH; 'none' to skip)")
    ap.add_argument("--inspect-sample", type=int, default=3,
                    help="documents per shard to cross-check with `almr inspect` (default 3)")
    ap.add_argument("--rewrite-with-megatron", action="store_true",
                    help="rewrite every shard with Megatron's IndexedDatasetBuilder and "
                    "compare .bin/.idx byte for byte")
    ap.add_argument("--rewrite-dir", help="where to put the Megatron-written copies "
                    "(default: a temporary directory, removed at exit)")
    ap.add_argument("--mix", action="append", default=[], metavar="NAME",
                    help="also check OUT/mix/NAME.megatron.txt (from `almr mix --export "
                    "megatron`) with Megatron's build_blending_indices (repeatable)")
    ap.add_argument("--recipe", metavar="ARGS_FILE",
                    help="pretrain_gpt.py arguments, one a line (RUN_DIR/pretrain_gpt.args of "
                    "scripts/megatron_cpt.sbatch): parse them with Megatron-LM's parser and "
                    "build its datasets from them (needs --megatron-lm)")
    ap.add_argument("--megatron-lm", metavar="DIR",
                    help="a Megatron-LM checkout (for --recipe: megatron/training, pretrain_gpt.py)")
    ap.add_argument("--world-size", type=int, default=64,
                    help="for --recipe: the GPUs the arguments are validated for (default 64)")
    ap.add_argument("--gpu-arch", type=int, default=9,
                    help="for --recipe: the GPU architecture (major compute capability) "
                    "validate_args is told, without a GPU (default 9, Hopper)")
    ap.add_argument("--recipe-sweep", metavar="SWEEP",
                    help="for --recipe: also check the mix's ALMR and --lr against "
                    "SWEEP/recommendation.json")
    args = ap.parse_args()
    if args.recipe and not args.megatron_lm:
        ap.error("--recipe needs --megatron-lm DIR")

    out_dir = os.path.abspath(args.out_dir)
    with open(os.path.join(out_dir, "manifest.json")) as f:
        manifest = json.load(f)
    golden = load_golden(args.golden) if args.golden else None
    almr = find_almr(args.almr)

    print(f"versions: {versions()}")
    print(f"reader: {IndexedDataset.__module__}.IndexedDataset ({mid.__file__})")
    print(f"out dir: {out_dir}; tokenizer dtype {manifest['tokenizer']['dtype']}, "
          f"eos_id {manifest['tokenizer']['eos_id']}; {len(manifest['shards'])} shard(s)")
    print(f"almr inspect: {almr or 'not found, skipped'}"
          + (f"; golden: {args.golden} ({len(golden)} docs)" if golden is not None else ""))

    tmp = None
    stats = {"items": 0, "golden_seen": set(), "rewrite_dir": None}
    if args.rewrite_with_megatron:
        if args.rewrite_dir:
            stats["rewrite_dir"] = os.path.abspath(args.rewrite_dir)
            os.makedirs(stats["rewrite_dir"], exist_ok=True)
        else:
            tmp = tempfile.mkdtemp(prefix="almr-megatron-rewrite-")
            stats["rewrite_dir"] = tmp
        print(f"megatron-written copies: {stats['rewrite_dir']}")

    fails = Failures()
    try:
        for entry in manifest["shards"]:
            check_shard(out_dir, entry, manifest, args, golden, almr, fails, stats)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    for name in args.mix:
        check_blend(out_dir, name, fails)
    if args.recipe:
        check_recipe(out_dir, manifest, args, fails)

    if golden is not None:
        print(f"golden: {len(stats['golden_seen'])} of {len(golden)} golden documents "
              f"found in the shards")
    n_shards = len(manifest["shards"])
    if fails.items:
        print(f"FAILED: {len(fails.items)} mismatch(es) over {n_shards} shard(s), "
              f"{stats['items']} documents")
        return 1
    print(f"OK: {n_shards} shard(s), {stats['items']} documents read by Megatron's "
          f"IndexedDataset match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
