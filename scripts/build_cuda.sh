#!/usr/bin/env bash
# Builds the CUDA trainer (target/cuda/release/almr-train) on a machine that
# has neither a GPU nor a CUDA toolkit, then checks how it is linked.
#
#   scripts/build_cuda.sh            # set up, build, check
#   scripts/build_cuda.sh --no-check # set up and build only
#   scripts/build_cuda.sh --check    # check an existing build only
#
# The CUDA 13.0 toolkit comes from NVIDIA's PyPI wheels, installed into a
# virtual environment under target/ (git-ignored), so nothing is installed
# system-wide. Re-running reuses the venv, the private link directory and the
# cargo target dir; cargo only rebuilds what changed. See DEVELOPERS.md,
# "Building the CUDA trainer", for why and for running the binary on a GPU
# machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# Everything big lives under target/, which is git-ignored.
VENV=$ROOT/target/cuda-venv          # the CUDA wheels (about 1.2 GiB)
TARGET_DIR=$ROOT/target/cuda         # cargo target dir of the CUDA build
LINK=$ROOT/target/cuda-link          # lib/: unversioned .so links; stubs/: libcuda stub
CHECK=$ROOT/target/cuda-check        # a tiny build + mix + run for the checks
BIN=$TARGET_DIR/release/almr-train

# Hopper (H100/H200). cudaforge (candle-kernels' build helper) turns 90 into
# sm_90a, and it would otherwise run nvidia-smi, which does not exist here.
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

# CUDA 13.0 exactly: the GPU machines run a CUDA 13.0 driver, and the driver
# JIT-compiles candle's PTX at run time. PTX from a newer nvcc (13.1+, PTX ISA
# > 9.0) is rejected by a 13.0 driver with CUDA_ERROR_UNSUPPORTED_PTX_VERSION.
# The versions are those the `cuda-toolkit==13.0.2` meta-package pins (CUDA
# 13.0 Update 2); cuBLAS is versioned on its own: 13.0 GA shipped cuBLAS
# 13.0.0.19, 13.0 U1 13.0.2.14, 13.0 U2 13.1.0.3. cuRAND is 10.4.0.35 for all
# of 13.0. nvidia-cuda-crt (crt/ headers) and nvidia-nvvm (cicc, libdevice)
# are parts of nvcc that the nvcc wheel requires without pinning them: pinned
# here so that pip cannot pair nvcc 13.0 with a newer cicc. cccl holds the
# cuda/std headers that cuda_fp16.h and friends include.
PINS=(
  "nvidia-cuda-nvcc==13.0.88"
  "nvidia-cuda-crt==13.0.88"
  "nvidia-nvvm==13.0.88"
  "nvidia-cuda-cccl==13.0.85"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-nvrtc==13.0.88"
  "nvidia-cublas==13.1.0.3"
  "nvidia-curand==10.4.0.35"
)

DO_BUILD=1
DO_CHECK=1
case "${1:-}" in
  "") ;;
  --no-check) DO_CHECK=0 ;;
  --check) DO_BUILD=0 ;;
  *) echo "usage: $0 [--no-check|--check]" >&2; exit 2 ;;
esac

T0=$SECONDS
TS=$SECONDS
stage() {
  # Prints the time of the previous stage, then the next stage's title.
  if [[ -n "${STAGE:-}" ]]; then
    echo "--- $STAGE: $((SECONDS - TS)) s"
  fi
  STAGE=$1
  TS=$SECONDS
  echo
  echo "=== $STAGE"
}

# ---------------------------------------------------------------------------
stage "venv with the CUDA 13.0 wheels"
# A venv rather than `pip install --user`: the toolkit must not leak into other
# Python environments, and deleting target/ removes it.
if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV"
fi
# pip is only called when the pins change (a stamp file), so re-runs work
# offline.
PIN_STAMP=$VENV/.cuda-pins
if [[ ! -f $PIN_STAMP ]] || [[ "$(cat "$PIN_STAMP")" != "${PINS[*]}" ]]; then
  "$VENV/bin/pip" install --disable-pip-version-check -q "${PINS[@]}"
  echo "${PINS[*]}" >"$PIN_STAMP"
else
  echo "pins unchanged, reusing $VENV"
fi

# The CUDA 13 wheels share one prefix, site-packages/nvidia/cu13/{bin,include,
# lib,nvvm}: a toolkit layout, except that lib/ has only versioned sonames
# (libcublas.so.13, no libcublas.so) and no libcuda at all.
CUDA=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
[[ -x $CUDA/bin/nvcc ]] || { echo "no nvcc in $CUDA/bin" >&2; exit 1; }
"$CUDA/bin/nvcc" --version | tail -2

# ---------------------------------------------------------------------------
stage "link directory: unversioned .so links and a libcuda stub"
mkdir -p "$LINK/lib" "$LINK/stubs"
# cudarc (dynamic-linking) and candle-kernels ask the linker for -lcuda
# -lnvrtc -lcurand -lcublas -lcublasLt -lcudart, which need the unversioned
# names. The links point into the venv; the sonames recorded in the binary
# are the versioned ones (libcublas.so.13, ...).
for pair in cublas:libcublas.so.13 cublasLt:libcublasLt.so.13 curand:libcurand.so.10 \
            nvrtc:libnvrtc.so.13 cudart:libcudart.so.13; do
  name=${pair%%:*}
  file=${pair#*:}
  [[ -f $CUDA/lib/$file ]] || { echo "missing $CUDA/lib/$file" >&2; exit 1; }
  ln -sfn "$CUDA/lib/$file" "$LINK/lib/lib$name.so"
done

# libcuda.so is the driver; no wheel ships it (nor a stubs/libcuda.so). We
# generate a stub that defines every driver function cudarc declares, taking
# the names from cudarc's own bindings, so whatever subset the binary uses
# links. Its soname is libcuda.so.1, the name the real driver has, so the
# binary's NEEDED entry is libcuda.so.1 and the GPU machine's driver is loaded
# instead. Every function returns CUDA_ERROR_STUB_LIBRARY (34), as NVIDIA's own
# stub does, so running against it fails cleanly at cuInit.
CUDARC_DIR=$(cargo metadata --format-version 1 --features almr-trainer/cuda |
  "$VENV/bin/python" -c 'import json, os, sys
d = json.load(sys.stdin)
print(next(os.path.dirname(p["manifest_path"]) for p in d["packages"] if p["name"] == "cudarc"))')
SYMS=$CUDARC_DIR/src/driver/sys/mod.rs
STUB_C=$LINK/stubs/libcuda_stub.c
STUB_SO=$LINK/stubs/libcuda.so
if [[ ! -f $STUB_SO || $SYMS -nt $STUB_SO || $0 -nt $STUB_SO ]]; then
  {
    echo "/* Generated by scripts/build_cuda.sh from the names in $SYMS."
    echo "   A link-time stand-in for the CUDA driver: never ship or load it on a GPU machine. */"
    echo "#include <stddef.h>"
    echo "#define STUB 34 /* CUDA_ERROR_STUB_LIBRARY */"
    echo "int cuGetErrorName(int e, const char **s) {"
    echo "  if (s == NULL) return 1;"
    echo "  *s = e == STUB ? \"CUDA_ERROR_STUB_LIBRARY\" : \"CUDA_ERROR_UNKNOWN\";"
    echo "  return 0;"
    echo "}"
    echo "int cuGetErrorString(int e, const char **s) {"
    echo "  if (s == NULL) return 1;"
    echo "  *s = e == STUB ? \"CUDA driver is a stub library (no NVIDIA driver on this machine)\""
    echo "                 : \"unknown error (libcuda stub)\";"
    echo "  return 0;"
    echo "}"
    # One definition per name; the arguments do not matter to a function that
    # ignores them (the caller cleans up in the x86-64 System V ABI).
    grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$SYMS" | sed -E 's/^\s+fn //; s/\($//' | sort -u |
      grep -vxE 'cuGetErrorName|cuGetErrorString' |
      sed -E 's/.*/int &(void) { return STUB; }/'
  } >"$STUB_C"
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$STUB_SO" "$STUB_C"
fi
# libcuda.so.1 is for running the checks below on this machine only.
ln -sfn libcuda.so "$LINK/stubs/libcuda.so.1"
echo "stub: $STUB_SO ($(nm -D --defined-only "$STUB_SO" | grep -c ' T cu') cu* functions)"

# ---------------------------------------------------------------------------
# The build environment. Set the same way on every run, so that cargo's
# rerun-if-env-changed checks (cudarc: CUDA_HOME, CUDA_PATH, CUDA_ROOT;
# cudaforge: CUDA_COMPUTE_CAP, NVCC) do not force rebuilds.
export PATH=$CUDA/bin:$PATH                  # cudarc runs `nvcc --version`; cudaforge finds nvcc
export NVCC=$CUDA/bin/nvcc                    # cudaforge looks here first
export CUDA_ROOT=$CUDA CUDA_HOME=$CUDA CUDA_PATH=$CUDA  # cudarc: -L $CUDA/lib
# cudarc's -L $CUDA/lib has no unversioned names and candle-kernels adds no -L
# for cudart at all: the linker (cc) finds them through LIBRARY_PATH. This
# does not put an rpath into the binary (rustc adds none without -C rpath).
export LIBRARY_PATH=$LINK/lib:$LINK/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
unset NVCC_CCBIN CUDARC_CUDA_VERSION           # let nvcc use gcc; 13.0 from nvcc

if [[ $DO_BUILD == 1 ]]; then
  stage "cargo build --release -p almr-trainer --features cuda"
  # nvcc compiles candle's kernels: PTX (embedded in the binary, JIT-compiled by
  # the driver) and libmoe.a (sm_90a SASS, linked in). Slow on few cores.
  cargo build --release -p almr-trainer --features cuda --target-dir "$TARGET_DIR"
  ls -l "$BIN"
fi

[[ $DO_CHECK == 1 ]] || { stage "done"; echo "total: $((SECONDS - T0)) s"; exit 0; }
[[ -x $BIN ]] || { echo "no $BIN: build first" >&2; exit 1; }

# ---------------------------------------------------------------------------
stage "link check: NEEDED, RPATH/RUNPATH"
readelf -d "$BIN" | grep -E 'NEEDED|RPATH|RUNPATH' || true
NEEDED=$(readelf -d "$BIN" | sed -nE 's/.*Shared library: \[(.*)\]/\1/p')
# The linker runs with --as-needed: a library is NEEDED only if the binary
# uses one of its symbols. With candle 0.11.1 that drops libnvrtc (nothing
# compiles CUDA C at run time) and libcublasLt (reached through libcublas,
# which NEEDs it itself).
for lib in libcuda.so.1 libcublas.so.13 libcurand.so.10 libcudart.so.13; do
  grep -qxF "$lib" <<<"$NEEDED" || { echo "FAIL: $lib not NEEDED" >&2; exit 1; }
done
# The CUDA libraries' symbol versions are per soname (cublasCreate_v2@libcublas.so.13),
# so any 13.x build of them (PyTorch's included) satisfies the binary.
readelf -VW "$BIN" | grep -E 'File: lib(cu|nvrtc)' || true
# The stub and the venv must not be baked in: on the GPU machine the real
# driver and the libraries there have to be found.
if readelf -d "$BIN" | grep -E 'RPATH|RUNPATH'; then
  echo "FAIL: the binary has an rpath" >&2
  exit 1
fi
if strings -a "$BIN" | grep -F "$LINK" >/dev/null; then
  echo "note: $LINK appears in the binary's strings (not as an rpath)"
fi
echo "ok: NEEDED as expected, no rpath"

# ---------------------------------------------------------------------------
stage "link check: ldd with the venv's libraries and the stub"
export LD_LIBRARY_PATH=$CUDA/lib:$LINK/stubs
# (Captured first: `ldd | grep -q` can kill ldd with SIGPIPE, which pipefail
# would report as a failure.)
LDD=$(ldd "$BIN")
echo "$LDD"
if grep -q 'not found' <<<"$LDD"; then
  echo "FAIL: unresolved libraries" >&2
  exit 1
fi
grep -qF "libcuda.so.1 => $LINK/stubs/" <<<"$LDD" || { echo "FAIL: libcuda.so.1 not the stub" >&2; exit 1; }
echo "ok: all resolved (libcuda.so.1 -> the stub)"

# ---------------------------------------------------------------------------
stage "run check: --help"
HELP=$("$BIN" --help)
echo "$HELP" | head -8
"$BIN" --version

# ---------------------------------------------------------------------------
stage "run check: train --device cuda without a GPU"
# A tiny build and mix, so that the command line is a real one. The device is
# created before the mix is read, so this only exercises CUDA initialisation.
if [[ ! -f $CHECK/build/mix/m.mix ]]; then  # almr mix writes mix/m.mix + mix/m.json
  cargo build --release -p almr
  rm -rf "$CHECK/build"
  target/release/almr build pipelines/tokenize_only.toml --out "$CHECK/build"
  target/release/almr mix "$CHECK/build" --name m --almr 0.5 --seq-len 64 --samples 64
fi
rm -rf "$CHECK/run"
set +e
"$BIN" train --mix "$CHECK/build/mix/m" --out "$CHECK/run" --config tiny --steps 1 \
  --device cuda >"$CHECK/train.out" 2>&1
rc=$?
set -e
cat "$CHECK/train.out"
echo "exit status: $rc"
# A clean failure: an error exit (not a signal, not a Rust panic).
if [[ $rc == 0 ]]; then
  echo "FAIL: training on CUDA succeeded on a machine without a GPU?" >&2
  exit 1
elif ((rc >= 128)) || grep -q 'panicked' "$CHECK/train.out"; then
  echo "FAIL: crashed (status $rc)" >&2
  exit 1
fi
echo "ok: clean error"

# ---------------------------------------------------------------------------
stage "kernel targets"
# PTX: candle-kernels embeds its .ptx files as strings; each has a .version
# (PTX ISA; 9.0 = CUDA 13.0) and a .target line.
echo "PTX modules (count, directive):"
strings -a "$BIN" | grep -E '^\.(version|target) ' | sort | uniq -c || true
# SASS: libmoe.a (candle's quantized/MoE kernels) is compiled by nvcc -c with
# -gencode=arch=compute_90a,code=sm_90a: cubins only, no PTX. The CUDA 13.0
# wheels have no cuobjdump; the oldest cuobjdump wheel is 13.2, which reads
# 13.0 fatbins fine. It only inspects, so it is unpacked apart from the
# toolkit (target/cuda-tools), not installed into the venv.
CUOBJDUMP=$ROOT/target/cuda-tools/nvidia/cu13/bin/cuobjdump
if [[ ! -x $CUOBJDUMP ]]; then
  mkdir -p "$ROOT/target/cuda-tools"
  if "$VENV/bin/pip" download --disable-pip-version-check -q --no-deps \
       "nvidia-cuda-cuobjdump==13.2.51" -d "$ROOT/target/cuda-tools/wheel"; then
    "$VENV/bin/python" -m zipfile -e "$ROOT"/target/cuda-tools/wheel/nvidia_cuda_cuobjdump-*.whl \
      "$ROOT/target/cuda-tools"
    chmod +x "$CUOBJDUMP"
  fi
fi
if [[ -x $CUOBJDUMP ]]; then
  echo "cubins embedded in the binary (cuobjdump --list-elf), by arch:"
  "$CUOBJDUMP" --list-elf "$BIN" | grep -oE 'sm_[0-9]+[af]?\.cubin' | sort | uniq -c || true
  echo "PTX in fatbins (cuobjdump --list-ptx):"
  "$CUOBJDUMP" --list-ptx "$BIN" 2>&1 | grep -oE 'sm_[0-9]+[af]?\.ptx|No PTX.*' | sort | uniq -c || true
else
  echo "note: no cuobjdump (offline?); SASS targets not listed"
fi

# ---------------------------------------------------------------------------
stage "sizes"
ls -l "$BIN"
# What would have to be carried to a GPU machine that lacks CUDA 13 libraries:
# everything ldd resolves into the venv (libcuda is the machine's driver).
echo "CUDA libraries the binary loads (ldd, transitive, from the venv):"
total=0
for f in $(awk -v d="$CUDA/lib/" 'index($3, d) == 1 {print $3}' <<<"$LDD" | sort -u); do
  s=$(stat -Lc %s "$f")
  total=$((total + s))
  printf '  %-24s %6d MiB\n' "$(basename "$f")" $((s / 1048576))
done
printf '  %-24s %6d MiB (the limit for carrying files to a GPU machine is 64 MiB)\n' total $((total / 1048576))

# ---------------------------------------------------------------------------
stage "dist: a binary small enough to carry"
# The release binary carries DWARF line tables (Cargo.toml: debug =
# "line-tables-only"), which triple its size. A copy without them (symbols
# kept, so backtraces still name functions) and its gzip are what to copy to
# the GPU machine; gzip because every machine has it.
DIST=$TARGET_DIR/dist
mkdir -p "$DIST"
if [[ ! -f $DIST/almr-train || $BIN -nt $DIST/almr-train ]]; then
  objcopy --strip-debug "$BIN" "$DIST/almr-train.tmp"
  mv "$DIST/almr-train.tmp" "$DIST/almr-train"
  gzip -6 -c "$DIST/almr-train" >"$DIST/almr-train.gz.tmp"
  mv "$DIST/almr-train.gz.tmp" "$DIST/almr-train.gz"
fi
ls -l "$DIST/almr-train" "$DIST/almr-train.gz"
sha256sum "$DIST/almr-train"

stage "done"
echo "total: $((SECONDS - T0)) s"
