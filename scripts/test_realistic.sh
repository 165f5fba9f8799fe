#!/usr/bin/env bash
# Deblur a folder of real blurry photos with a trained checkpoint (any size, any bit depth).
#
#   bash scripts/test_realistic.sh CHECKPOINT INPUT_DIR OUTPUT_DIR [predict options...]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash scripts/test_realistic.sh CHECKPOINT INPUT_DIR OUTPUT_DIR [options...]" >&2
    exit 2
fi
ckpt="$(realpath "$1")"
input="$(realpath "$2")"
out="$(realpath -m "$3")"
shift 3
cd "$(dirname "$0")/.."
# Sleeping, not spinning, OpenMP workers: far faster when another process shares the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
bash scripts/setup.sh
exec .venv/bin/python -m realblur_gan.predict --checkpoint "$ckpt" "$input" --out "$out" "$@"
