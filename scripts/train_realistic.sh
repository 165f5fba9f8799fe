#!/usr/bin/env bash
# Train on your own photos: a folder of sharp photos and a folder of real blurry photos (NOT
# paired). By default the own-data recipe (conf/experiment/own_data.yaml): the packaged DBGAN is
# fine-tuned on blur from a learnable camera fitted to your blurry photos. With SCHEME set, that
# scheme trains BGAN and DBGAN from scratch instead. The validation split is held out of the
# sharp photos and blurred with the realistic camera pipeline.
#
#   bash scripts/train_realistic.sh SHARP_DIR REAL_BLUR_DIR [hydra overrides...]
#   SCHEME=joint bash scripts/train_realistic.sh photos/sharp photos/blurry stages.joint.trainer.max_epochs=50
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/train_realistic.sh SHARP_DIR REAL_BLUR_DIR [overrides...]" >&2
    exit 2
fi
sharp="$(realpath "$1")"
real="$(realpath "$2")"
shift 2
cd "$(dirname "$0")/.."
# Sleeping, not spinning, OpenMP workers: far faster when another process shares the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
bash scripts/setup.sh
# Hydra parses override values, so a path with spaces, commas, brackets, quotes or '=' would
# need quoting for it; passed through the environment and read with oc.env, any path works.
export REALBLUR_GAN_SHARP_DIR="$sharp" REALBLUR_GAN_REAL_BLUR_DIR="$real"
if [ -n "${SCHEME:-}" ]; then recipe=("+scheme=$SCHEME" data=folders); else recipe=(+experiment=own_data); fi
exec .venv/bin/python -m realblur_gan "${recipe[@]}" \
    'data.sharp_dir=${oc.env:REALBLUR_GAN_SHARP_DIR}' \
    'data.real_blur_dir=${oc.env:REALBLUR_GAN_REAL_BLUR_DIR}' "$@"
