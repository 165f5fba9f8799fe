#!/usr/bin/env bash
# Command A: set up, then train the joint scheme on the generated demo data.
# Extra arguments are Hydra overrides, e.g. `bash scripts/demo.sh logger=csv`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Sleeping, not spinning, OpenMP workers: far faster when another process shares the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
bash scripts/setup.sh
exec .venv/bin/python -m realblur_gan +scheme=joint "$@"
