#!/usr/bin/env bash
# Command B: set up, then run the default test suite (slow tests: add `-m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
# Sleeping, not spinning, OpenMP workers: far faster when another process shares the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
