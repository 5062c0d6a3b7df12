#!/usr/bin/env python3
"""Write almr's code-and-math fixture from files shipped in registry packages.

Usage (scripts/make_code_math.sh downloads and unpacks the packages first):

    python3 scripts/make_code_math.py --out REPO_ROOT \
        --stdlib DIR      # usr/lib/python3.11 of Debian libpython3.11-{minimal,stdlib}
        --include DIR     # usr/include/python3.11 of Debian libpython3.11-dev
        --numpy DIR       # the unpacked numpy wheel (holds numpy/ and numpy-*.dist-info/)
        --texdoc DIR      # usr/share/doc/texlive-doc of Debian texlive-latex-base-doc

Writes

    fixtures/code_math/code_math.jsonl.gz   one document a line (gzip, mtime 0)
    fixtures/code_math/LICENSE.python    the PSF licence, copied unchanged
    fixtures/code_math/LICENSE.numpy     numpy's BSD-3-Clause licence (its first part)

One JSON object per line, keys in this order:

    {"id": "py-bisect", "kind": "python_source", "origin": "...", "licence": "...", "text": "..."}

UTF-8, ensure_ascii=False. Kinds, in this order in the file:

    python_source     whole modules of the Python standard library
    c_source          whole C headers of Python's development files
    python_docstring  docstrings of statistics, fractions, random, heapq, _pydecimal
    numpy_docstring   numpy docstrings with formulas (`.. math::`, `:math:`, `\\frac`)
    latex             amsmath's sample and test documents, cut at sections

Everything is selected by fixed rules (sizes, names, sorted order, no near
duplicates), so two runs over the same packages give byte-identical files. Nothing is edited
except that LaTeX files are cut into pieces (their licence allows changed
copies under another name) and docstrings are dedented (inspect.cleandoc).
"""

import argparse
import ast
import gzip
import io
import json
import os
import re
import sys

PY_ORIGIN = "Debian libpython3.11-{pkg} 3.11.2-6+deb12u8, usr/lib/python3.11/{name}"
PY_LICENCE = "PSF-2.0"
NP_ORIGIN = "PyPI numpy 2.3.5 (wheel cp311 manylinux_2_28_x86_64), {path}"
NP_LICENCE = "BSD-3-Clause"
TEX_ORIGIN = "Debian texlive-latex-base-doc 2022.20230122-3, usr/share/doc/texlive-doc/{path}"

# Standard-library modules whose source is used whole: every top-level module
# of 1,500 to 6,000 bytes, except Debian's own addition.
SOURCE_MIN, SOURCE_MAX = 1500, 6000
SOURCE_SKIP = {"_distutils_system_mod.py"}

# C headers used whole: every top-level header of 2,500 to 6,000 bytes except
# pyconfig.h (Debian's multiarch wrapper).
HEADER_MIN, HEADER_MAX = 2500, 6000
HEADER_SKIP = {"pyconfig.h"}
C_ORIGIN = "Debian libpython3.11-dev 3.11.2-6+deb12u8, usr/include/python3.11/{name}"

# Modules whose docstrings are used, with the fewest characters a docstring
# must have (shorter ones have fewer than Gopher's 50 words, and are rejected
# for their length like any short text).
DOCSTRING_MODULES = ["statistics.py", "fractions.py", "random.py", "heapq.py", "_pydecimal.py"]
DOCSTRING_MIN = 500
DOCSTRING_COUNT = 25

# numpy files whose docstrings with formulas are used (one polynomial module
# only: the others share its templated docstrings).
NUMPY_FILES = [
    "numpy/_core/numeric.py",
    "numpy/fft/__init__.py",
    "numpy/lib/_function_base_impl.py",
    "numpy/lib/_histograms_impl.py",
    "numpy/lib/_polynomial_impl.py",
    "numpy/linalg/_linalg.py",
    "numpy/polynomial/polynomial.py",
]
NUMPY_MAX = 4000
MATH = re.compile(r"\.\. math::|:math:`|\\frac")

# LaTeX files (American Mathematical Society: "if you do make changes, you
# first rename it"; PSNFSS: LPPL, used whole) and the longest piece.
TEX_FILES = [
    ("latex/amsmath/subeqn.tex.gz", "AMS (changed copies must be renamed)"),
    ("latex/amsmath/technote.tex.gz", "AMS (changed copies must be renamed)"),
    ("latex/amsmath/testmath.tex.gz", "AMS (changed copies must be renamed)"),
    ("latex/psnfss/test/mathtest.tex", "LPPL-1.3c"),
]
TEX_PIECE = 5000
SECTION = re.compile(r"^\\(section|subsection)\*?\{")


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def files_in(folder, ext, skip, lo, hi):
    """The names in `folder` ending in `ext`, not in `skip`, of lo..=hi bytes, sorted."""
    return sorted(
        n
        for n in os.listdir(folder)
        if n.endswith(ext)
        and n not in skip
        and lo <= os.path.getsize(os.path.join(folder, n)) <= hi
    )


def python_sources(stdlib):
    for n in files_in(stdlib, ".py", SOURCE_SKIP, SOURCE_MIN, SOURCE_MAX):
        pkg = "minimal" if n in MINIMAL else "stdlib"
        yield {
            "id": "py-" + n[:-3].strip("_").replace("_", "-"),
            "kind": "python_source",
            "origin": PY_ORIGIN.format(pkg=pkg, name=n),
            "licence": PY_LICENCE,
            "text": read(os.path.join(stdlib, n)),
        }


def c_sources(include):
    for n in files_in(include, ".h", HEADER_SKIP, HEADER_MIN, HEADER_MAX):
        yield {
            "id": "c-" + n[:-2],
            "kind": "c_source",
            "origin": C_ORIGIN.format(name=n),
            "licence": PY_LICENCE,
            "text": read(os.path.join(include, n)),
        }


def docstrings(path):
    """(line, qualified name, cleaned docstring) of every documented node."""
    tree = ast.parse(read(path))
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                doc = ast.get_docstring(child, clean=True)
                if doc:
                    out.append((child.lineno, name, doc))
                walk(child, name + ".")

    doc = ast.get_docstring(tree, clean=True)
    if doc:
        out.append((0, "<module>", doc))
    walk(tree, "")
    return sorted(out)


def python_docstrings(stdlib):
    found = []
    for n in DOCSTRING_MODULES:
        for line, name, doc in docstrings(os.path.join(stdlib, n)):
            if len(doc) >= DOCSTRING_MIN:
                found.append((n, line, name, doc))
    # Spread the picks over the modules: every k-th in file order.
    step = max(1, len(found) // DOCSTRING_COUNT)
    for n, line, name, doc in found[::step][:DOCSTRING_COUNT]:
        pkg = "minimal" if n in MINIMAL else "stdlib"
        yield {
            "id": f"pydoc-{n[:-3].strip('_')}-{name}",
            "kind": "python_docstring",
            "origin": PY_ORIGIN.format(pkg=pkg, name=n) + f", line {line}",
            "licence": PY_LICENCE,
            "text": doc + "\n",
        }


def numpy_docstrings(root):
    for path in NUMPY_FILES:
        for line, name, doc in docstrings(os.path.join(root, path)):
            if MATH.search(doc) and len(doc) <= NUMPY_MAX:
                module = path[len("numpy/"):-3].replace("/", ".")
                yield {
                    "id": f"np-{module}-{name}",
                    "kind": "numpy_docstring",
                    "origin": NP_ORIGIN.format(path=path) + f", line {line}",
                    "licence": NP_LICENCE,
                    "text": doc + "\n",
                }


def pieces(text):
    """Cut at \\section / \\subsection lines, then pack whole sections into
    pieces of at most TEX_PIECE characters; a longer section is cut at blank
    lines."""
    sections, cur = [], []
    for line in text.splitlines(keepends=True):
        if SECTION.match(line) and cur:
            sections.append("".join(cur))
            cur = []
        cur.append(line)
    sections.append("".join(cur))
    blocks = []
    for s in sections:
        if len(s) <= TEX_PIECE:
            blocks.append(s)
            continue
        part = ""
        for para in re.split(r"(?<=\n)(?=\n)", s):
            if part and len(part) + len(para) > TEX_PIECE:
                blocks.append(part)
                part = ""
            part += para
        blocks.append(part)
    out, cur = [], ""
    for b in blocks:
        if cur and len(cur) + len(b) > TEX_PIECE:
            out.append(cur)
            cur = ""
        cur += b
    out.append(cur)
    return [p.strip("\n") + "\n" for p in out if p.strip()]


def latex(texdoc):
    for path, licence in TEX_FILES:
        name = os.path.basename(path).removesuffix(".gz").removesuffix(".tex")
        parts = pieces(read(os.path.join(texdoc, path)))
        for i, p in enumerate(parts, 1):
            yield {
                "id": f"tex-{name}-{i:02}",
                "kind": "latex",
                "origin": TEX_ORIGIN.format(path=path)
                + (f", piece {i} of {len(parts)}" if len(parts) > 1 else ""),
                "licence": licence,
                "text": p,
            }


# A document whose character 5-grams (whitespace left out) have a Jaccard
# similarity of at least this with an earlier one is left out: numpy's
# templated docstrings (hanning/hamming, polyval2d/polyval3d) are near
# duplicates, which the near_dedup step removes, and this fixture is for
# the filters.
NEAR_DUPLICATE = 0.4


def shingles(text):
    t = "".join(text.split())
    return {t[i : i + 5] for i in range(len(t) - 4)}


def distinct(docs):
    kept, sets = [], []
    for d in docs:
        s = shingles(d["text"])
        if all(len(s & o) < NEAR_DUPLICATE * len(s | o) for o in sets):
            kept.append(d)
            sets.append(s)
    return kept


# Top-level modules that Debian ships in libpython3.11-minimal (the rest are
# in libpython3.11-stdlib); only used to name the package in `origin`.
MINIMAL = set()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--stdlib", required=True)
    ap.add_argument("--include", required=True)
    ap.add_argument("--numpy", required=True)
    ap.add_argument("--texdoc", required=True)
    ap.add_argument("--minimal-list", required=True, help="file list of libpython3.11-minimal")
    a = ap.parse_args()
    with open(a.minimal_list, encoding="utf-8") as f:
        top = "./usr/lib/python3.11/"
        MINIMAL.update(
            l.strip()[len(top):]
            for l in f
            if l.strip().startswith(top) and "/" not in l.strip()[len(top):]
        )

    docs = distinct(
        [
            *python_sources(a.stdlib),
            *c_sources(a.include),
            *python_docstrings(a.stdlib),
            *numpy_docstrings(a.numpy),
            *latex(a.texdoc),
        ]
    )
    ids = [d["id"] for d in docs]
    if len(set(ids)) != len(ids):
        sys.exit("duplicate ids")
    dest = os.path.join(a.out, "fixtures", "code_math")
    os.makedirs(dest, exist_ok=True)
    data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of run-specific data.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    with open(os.path.join(dest, "code_math.jsonl.gz"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(dest, "LICENSE.python"), "w", encoding="utf-8", newline="\n") as f:
        f.write(read(os.path.join(a.stdlib, "LICENSE.txt")))
    # The wheel's LICENSE.txt is numpy's BSD-3-Clause text followed by the
    # licences of the libraries bundled in the binary, which none of our
    # text comes from: keep the first part.
    lic = read(os.path.join(a.numpy, "numpy-2.3.5.dist-info", "LICENSE.txt"))
    first = lic.split("\n----", 1)[0].rstrip("\n") + "\n"
    with open(os.path.join(dest, "LICENSE.numpy"), "w", encoding="utf-8", newline="\n") as f:
        f.write(first)
    kinds = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print(f"{len(docs)} documents: {kinds}, {sum(len(d['text']) for d in docs)} characters")


if __name__ == "__main__":
    main()
