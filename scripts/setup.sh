#!/usr/bin/env bash
# Create .venv and install realblur-gan (editable) with its dev tools. Idempotent: a second run
# only checks a stamp; it reinstalls when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch/torchvision are pinned in pyproject.toml to the CUDA builds that import together
    # and run on CPU; pip takes them from the local mirror when it has them.
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
