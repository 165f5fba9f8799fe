#!/usr/bin/env bash
# On a machine with a CUDA GPU: the GPU benchmark and the GPU tests, in one call (~5 min).
#
#   bash scripts/gpu_check.sh [OUT_DIR]      # results: OUT_DIR/*.md, *.json, *.txt (./gpu_check)
#
# 1. inference (scripts/bench_predict.py --device cuda): ms per 1280x720 frame in float32 and
#    bf16, the self-ensemble and a 12 MP photo, against a CUDA float32 matmul timed around each;
# 2. training (scripts/bench.py --device cuda): every stage's step and the switches (bf16-mixed,
#    contiguous instead of channels-last, torch.compile) at 256² crops, batch 4 and 16;
# 3. the tests: `pytest -m gpu --device cuda` (tests/test_gpu.py: predict/evaluate --device cuda,
#    --bf16, trainer=gpu, the benchmark) and the device-parametrised tests on cuda.
# Python: $PYTHON, else .venv/bin/python (scripts/setup.sh); it needs a CUDA build of torch.
# Exits 1 if any step failed; every step runs.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT="${1:-gpu_check}"
mkdir -p "$OUT"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA device visible to $PY (torch $("$PY" -c 'import torch; print(torch.__version__)'))" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt"

status=0
step() {  # step NAME COMMAND...: run, keep its output, remember a failure
    local name="$1"
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "== $name FAILED" >&2; status=1; }
}
step predict "$PY" scripts/bench_predict.py --device cuda --repeats 5 \
    --cases before,default,torch-whole,torch-t512,bf16,ensemble,12mp --json "$OUT/predict.json"
step train "$PY" scripts/bench.py --device cuda --parts train,switches,infer --sizes 256 \
    --batch 4,16 --json "$OUT/bench.json"
step pytest-gpu "$PY" -m pytest -q -m gpu --device cuda tests/
step pytest-device "$PY" -m pytest -q --device cuda tests/test_metrics.py tests/test_losses.py \
    tests/test_nets.py tests/test_blur.py tests/test_camera.py tests/test_blind.py
echo "results in $OUT/ (exit status $status)"
exit $status
