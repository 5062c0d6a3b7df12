#!/usr/bin/env bash
# Near-duplicate removal baseline: datatrove's MinHash pipeline.
#
#   scripts/bench_datatrove.sh [bench_datatrove.py options, e.g. --runs 3 --only cmn-zh]
#
# 1. makes a venv under target/bench/datatrove-venv with pinned packages
#    (datatrove 0.10.1 plus what its MinHash steps import: spaCy for the word
#    tokenizers, jieba for Chinese, xxhash, orjson, regex, tokenizers; and
#    mwparserfromhell for the corpus's Wikipedia text),
# 2. builds the corpus with scripts/make_neardup.py --bench (skipped when
#    target/bench/neardup/summary.json exists):
#      target/bench/neardup/zh.jsonl, en.jsonl, truth.json, summary.json
#    downloading the sources (pip download / apt-get download) into
#    target/bench/src when they are not there,
# 3. runs scripts/bench_datatrove.py, which prints Markdown tables and writes
#    target/bench/datatrove/results.json.
#
# Needs python3 (3.11 used) with venv; apt-get + dpkg-deb only if
# debian-reference-en has to be downloaded. Run it on an otherwise idle machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV=target/bench/datatrove-venv
PKGS=(datatrove==0.10.1 numpy==2.4.6 spacy==3.8.18 jieba==0.42.1 "xxhash==3.8.2"
      orjson==3.13.0 regex==2026.11.19 tokenizers==0.23.3 mwparserfromhell==0.7.2)

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import datatrove, spacy, jieba, xxhash, orjson, tokenizers, mwparserfromhell' 2>/dev/null; then
  echo "== venv $VENV (${PKGS[*]})" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PKGS[@]}"
fi

if [[ ! -f target/bench/neardup/summary.json ]]; then
  echo "== corpus (scripts/make_neardup.py --bench)" >&2
  "$VENV/bin/python" scripts/make_neardup.py --bench >/dev/null
fi

echo "== benchmark" >&2
"$VENV/bin/python" scripts/bench_datatrove.py "$@"
