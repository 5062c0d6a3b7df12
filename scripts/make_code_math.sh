#!/usr/bin/env bash
# Regenerate fixtures/code_math/ (real code, docstrings and LaTeX for the
# tests that the default filters keep code and math) from registry packages:
#
#   apt   libpython3.11-minimal, libpython3.11-stdlib  usr/lib/python3.11/*.py
#   apt   libpython3.11-dev                            usr/include/python3.11/*.h
#   apt   texlive-latex-base-doc                       usr/share/doc/texlive-doc/latex/{amsmath,psnfss}
#   PyPI  numpy (wheel)                                numpy/**/*.py, numpy-*.dist-info/LICENSE.txt
#
# Needs: bash, python3 (>= 3.9), apt-get + dpkg-deb (Debian; run `apt-get
# update` first), sha256sum, unzip. Versions are pinned and every package
# file's sha256 is checked, so a run reproduces the committed files byte for
# byte or stops with an error. Debian keeps one version of a package per
# release: when bookworm moves past 3.11.2-6+deb12u8, the download fails here
# rather than giving other files.
#
# Usage: scripts/make_code_math.sh [OUT_DIR]   (default: the repository root)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$(cd "$HERE/.." && pwd)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PYV=3.11.2-6+deb12u8
TEXV=2022.20230122-3
NUMPY=2.3.5

TMP="$(mktemp -d "${TMPDIR:-/tmp}/almr-code-math.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
chmod 0755 "$TMP"
cd "$TMP"
mkdir -p deb pip x np
chmod 0777 deb   # apt-get download runs as _apt when it can
(cd deb && apt-get download -q "libpython3.11-minimal=$PYV" "libpython3.11-stdlib=$PYV" \
  "libpython3.11-dev=$PYV" "texlive-latex-base-doc=$TEXV" >/dev/null)
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
  -d pip "numpy==$NUMPY"

sha256sum -c --quiet - <<SUMS
f3beaa03994ffedacf73c43a0843d53b062d347115d8af65bee2034552a4e6f9  deb/libpython3.11-minimal_${PYV}_amd64.deb
890b3540dad8a1ccc0deeca025db735bcc82629a76adacbe3b50fcc06ed528ca  deb/libpython3.11-stdlib_${PYV}_amd64.deb
01a8eddeb8505bb6e2c01209cda66b41fb5ebeaa64e69d0e25f7131915f1cd32  deb/libpython3.11-dev_${PYV}_amd64.deb
122dbbe00bd22f872b1837eb86bd76fbac6ec84dd4f5f0c76cc9c18484485848  deb/texlive-latex-base-doc_${TEXV}_all.deb
8cba086a43d54ca804ce711b2a940b16e452807acebe7852ff327f1ecd49b0d4  pip/numpy-${NUMPY}-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
SUMS

for deb in deb/*.deb; do dpkg-deb -x "$deb" x; done
dpkg-deb -c "deb/libpython3.11-minimal_${PYV}_amd64.deb" | awk '{print $6}' > minimal.list
(cd np && unzip -q ../pip/numpy-*.whl 'numpy/*' "numpy-$NUMPY.dist-info/*")

python3 "$HERE/make_code_math.py" --out "$OUT" --stdlib x/usr/lib/python3.11 \
  --include x/usr/include/python3.11 --numpy np --texdoc x/usr/share/doc/texlive-doc \
  --minimal-list minimal.list
(cd "$OUT" && sha256sum fixtures/code_math/*)
