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
# of 13.0. nvidia-cuda-crt and nvidia-nvvm hold nvcc's crt/ headers and cicc,
# which nvcc needs since CUDA 13 split them out of the nvcc wheel; cccl holds
# the cuda/std headers that cuda_fp16.h and friends include.
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
for lib in libcuda.so.1 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
  grep -qxF "$lib" <<<"$NEEDED" || { echo "FAIL: $lib not NEEDED" >&2; exit 1; }
done
# The stub and the venv must not be baked in: on the GPU machine the real
# driver and the libraries there have to be found.
if readelf -d "$BIN" | grep -E 'RPATH|RUNPATH'; then
  echo "FAIL: the binary has an rpath" >&2
  exit 1
fi
if strings -a "$BIN" | grep -qF "$LINK"; then
  echo "note: $LINK appears in the binary's strings (not as an rpath)"
fi
echo "ok: NEEDED as expected, no rpath"

# ---------------------------------------------------------------------------
stage "link check: ldd with the venv's libraries and the stub"
export LD_LIBRARY_PATH=$CUDA/lib:$LINK/stubs
ldd "$BIN"
if ldd "$BIN" | grep -q 'not found'; then
  echo "FAIL: unresolved libraries" >&2
  exit 1
fi
ldd "$BIN" | grep -q "libcuda.so.1 => $LINK/stubs/" || { echo "FAIL: libcuda.so.1 not the stub" >&2; exit 1; }
echo "ok: all resolved (libcuda.so.1 -> the stub)"

# ---------------------------------------------------------------------------
stage "run check: --help"
"$BIN" --help | head -5
"$BIN" --version

# ---------------------------------------------------------------------------
stage "run check: train --device cuda without a GPU"
# A tiny build and mix, so that the command line is a real one. The device is
# created before the mix is read, so this only exercises CUDA initialisation.
if [[ ! -d $CHECK/build/mix/m ]]; then
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
strings -a "$BIN" | grep -E '^\.(version|target) ' | sort | uniq -c
# SASS: libmoe.a (the quantized/MoE kernels) is compiled by nvcc -c with
# -gencode=arch=compute_90a,code=sm_90a: cubins only, no PTX. The wheels of
# CUDA 13.0 have no cuobjdump, so read the arch from the cubins' ELF headers
# in the objects (e_flags low byte = SM version on CUDA >= 12.8 cubins).
OBJS=$(find "$TARGET_DIR/release/build" -path '*candle-kernels-*/out/*.o' 2>/dev/null | head -50)
if [[ -n $OBJS ]]; then
  echo "libmoe objects (nvcc -c), embedded cubin arch:"
  "$VENV/bin/python" - $OBJS <<'EOF'
import collections, struct, sys
seen = collections.Counter()
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    i = data.find(b"\x7fELF", 1)           # the host object is itself an ELF
    while i != -1:
        # A cubin: ELF64, machine EM_CUDA (190).
        if data[i + 4] == 2 and struct.unpack_from("<H", data, i + 18)[0] == 190:
            flags = struct.unpack_from("<I", data, i + 48)[0]
            sm = flags & 0xFF if flags & 0xFF else (flags >> 8) & 0xFF
            suffix = "a" if flags & 0x8 or flags & 0x100000 else ""
            seen["sm_%d (e_flags 0x%x)" % (sm, flags)] += 1
        i = data.find(b"\x7fELF", i + 1)
for k, n in sorted(seen.items()):
    print("  %3d x %s" % (n, k))
EOF
fi

# ---------------------------------------------------------------------------
stage "sizes"
ls -l "$BIN"
echo "libraries the binary needs at run time (from the venv):"
total=0
for f in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 \
         libnvrtc-builtins.so.13.0 libcudart.so.13; do
  s=$(stat -Lc %s "$CUDA/lib/$f")
  total=$((total + s))
  printf '  %-28s %6d MiB\n' "$f" $((s / 1048576))
done
printf '  %-28s %6d MiB (limit for carrying to the GPU machine: 64 MiB)\n' total $((total / 1048576))

stage "done"
echo "total: $((SECONDS - T0)) s"
