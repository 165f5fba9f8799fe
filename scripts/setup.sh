#!/usr/bin/env bash
# Create .venv and install realblur-gan (editable) with its dev tools. Idempotent: a second run
# only checks a stamp; it reinstalls when pyproject.toml or constraints.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # pyproject.toml declares compatible ranges; constraints.txt pins the torch/torchvision
    # builds that import together and run on CPU (pip takes them from a local mirror if any).
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
