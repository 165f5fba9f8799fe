#!/usr/bin/env bash
# Command A: set up, then train the joint scheme on the generated demo data.
# Extra arguments are Hydra overrides, e.g. `bash scripts/demo.sh logger=csv`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m realblur_gan +scheme=joint "$@"
