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
    # The CPU-capable torch/torchvision builds take about 5.6 GB in .venv, and pip unpacks them
    # in TMPDIR first: a full disk would otherwise end deep inside pip with "Errno 28". A venv
    # that already holds torch only updates the smaller packages.
    need_kb=$((8 * 1024 * 1024))
    compgen -G ".venv/lib/python*/site-packages/torch" > /dev/null && need_kb=$((512 * 1024))
    for dir in . "${TMPDIR:-/tmp}"; do
        free_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
        if [ "${free_kb:-0}" -lt "$need_kb" ]; then
            echo "setup.sh: only $((free_kb / 1024)) MB free on $(cd "$dir" && pwd); the install needs about $((need_kb / 1024)) MB there: free some space (or point TMPDIR elsewhere) and rerun" >&2
            exit 1
        fi
    done
    .venv/bin/python -m pip install --quiet --upgrade pip
    # pyproject.toml declares compatible ranges; constraints.txt pins the torch/torchvision
    # builds that import together and run on CPU (pip takes them from a local mirror if any).
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
