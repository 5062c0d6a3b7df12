#!/usr/bin/env python3
"""Golden token ids for every fixture document, made with HuggingFace `tokenizers`.

Usage: make_golden.py REPO_ROOT

For each tokenizer (llama3, qwen3) under fixtures/tokenizers/<name>/tokenizer.json
this writes fixtures/golden/<name>_ids.jsonl (gzip-compressed, mtime 0, as
<name>_ids.jsonl.gz when larger than 500 KB). One JSON line per document:

    {"file": "<path relative to repo root>", "line": <1-based>, "ids": [...]}

Documents, in this order:
  1. fixtures/zh/peoples_daily_1998_01.jsonl.gz   field "text", line = jsonl line
  2. fixtures/zh/debian_reference/*.txt            sorted by name; whole file
                                                   (UTF-8, bytes as on disk, no
                                                   stripping) is one document; line = 1
  3. fixtures/en/enwiki.jsonl.zst                  field "text", line = jsonl line
  4. fixtures/en/enwiki_more.parquet               column "content", line = 1-based row

ids = Tokenizer.from_file(...).encode(text, add_special_tokens=False).ids
(no BOS, no EOS).
"""

import glob
import gzip
import io
import json
import os
import sys

GZIP_OVER = 500 * 1024


def documents(root):
    rel = "fixtures/zh/peoples_daily_1998_01.jsonl.gz"
    with gzip.open(os.path.join(root, rel), "rt", encoding="utf-8", newline="\n") as f:
        for i, line in enumerate(f, 1):
            yield rel, i, json.loads(line)["text"]

    for path in sorted(glob.glob(os.path.join(root, "fixtures/zh/debian_reference/*.txt"))):
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        yield os.path.relpath(path, root).replace(os.sep, "/"), 1, text

    import zstandard

    rel = "fixtures/en/enwiki.jsonl.zst"
    with open(os.path.join(root, rel), "rb") as f:
        data = zstandard.ZstdDecompressor().decompress(f.read())
    for i, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if line:
            yield rel, i, json.loads(line)["text"]

    import pyarrow.parquet as pq

    rel = "fixtures/en/enwiki_more.parquet"
    col = pq.read_table(os.path.join(root, rel), columns=["content"]).column("content").to_pylist()
    for i, text in enumerate(col, 1):
        yield rel, i, text


def main():
    import tokenizers
    from tokenizers import Tokenizer

    root = sys.argv[1] if len(sys.argv) > 1 else "."
    docs = list(documents(root))
    outdir = os.path.join(root, "fixtures", "golden")
    os.makedirs(outdir, exist_ok=True)
    for name in ("llama3", "qwen3"):
        tok = Tokenizer.from_file(os.path.join(root, "fixtures", "tokenizers", name, "tokenizer.json"))
        texts = [t for _, _, t in docs]
        encs = tok.encode_batch(texts, add_special_tokens=False)
        buf = io.StringIO()
        ntok = 0
        for (rel, line, _), enc in zip(docs, encs):
            buf.write(json.dumps({"file": rel, "line": line, "ids": enc.ids}, separators=(", ", ": ")))
            buf.write("\n")
            ntok += len(enc.ids)
        data = buf.getvalue().encode("utf-8")
        plain = os.path.join(outdir, f"{name}_ids.jsonl")
        gz = plain + ".gz"
        for stale in (plain, gz):
            if os.path.exists(stale):
                os.remove(stale)
        if len(data) > GZIP_OVER:
            out = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as g:
                g.write(data)
            dst, payload = gz, out.getvalue()
        else:
            dst, payload = plain, data
        with open(dst, "wb") as f:
            f.write(payload)
        print(f"golden: {name}: {len(docs)} docs, {ntok} tokens, {len(data)} bytes jsonl -> "
              f"{os.path.relpath(dst, root)} ({len(payload)} bytes); tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
