#!/usr/bin/env bash
# Check an `almr build` output directory with Megatron-LM's own IndexedDataset
# reader (and, with --rewrite-with-megatron, its IndexedDatasetBuilder writer).
#
# Usage: scripts/check_megatron.sh OUT_DIR [check_megatron.py options]
#   e.g. scripts/check_megatron.sh out/default \
#          --golden fixtures/golden/llama3_ids.jsonl.gz --rewrite-with-megatron
#   --mix NAME: Megatron's build_blending_indices on OUT/mix/NAME.megatron.txt
#   --recipe ARGS --megatron-lm DIR: the arguments of megatron_cpt.sbatch
#   through Megatron-LM's parser and dataset builder (check_megatron_recipe.sh)
#
# Creates (once) a virtual environment with pinned, real megatron-core and
# torch from PyPI at $MEGATRON_VENV (default: ~/.cache/almr/megatron-venv).
# torch from PyPI pulls the CUDA wheels: about 5.8 GB installed, ~2.5 min on a
# fast link. Nothing needs a GPU; the check runs on CPU.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MEGATRON_VENV:-$HOME/.cache/almr/megatron-venv}"
python="${PYTHON:-python3}"

# Versions verified together (Python 3.11, x86_64 Linux).
pins=(
  "megatron-core==0.16.1"
  "torch==2.15.0"
  "numpy==2.4.6"
  "pyarrow==26.0.1"
  # for --recipe: what Megatron-LM's megatron/training and pretrain_gpt.py
  # import, and transformers for its HuggingFaceTokenizer
  "transformers==5.24.0"
  "pydantic==2.14.4"
  "pyyaml==6.0.4"
  "regex==2026.11.19"
  "six==1.17.0"
)

if [ "$#" -lt 1 ]; then
  sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

stamp="$venv/.almr-pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  echo "setting up $venv (${pins[*]})" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi

exec "$venv/bin/python" "$here/check_megatron.py" "$@"
