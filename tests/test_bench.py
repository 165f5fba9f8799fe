"""scripts/bench.py: a tiny run of the training-step and plain-PyTorch reference parts."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("realblur_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_train_and_reference_rows(bench, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    argv = ["--quick", "--parts", "train,reference", "--sizes", "32", "--batch", "1"]
    bench.main([*argv, "--repeats", "2", "--json", str(out)])

    result = json.loads(out.read_text())
    rows = result["rows"]
    train = {r["stage"]: r for r in rows if r["part"] == "train"}
    assert set(train) == {"pretrain_bgan", "bgan", "dbgan", "joint"}
    reference = [r for r in rows if r["part"] == "reference"]
    assert len(reference) == 1
    for row in [*train.values(), *reference]:
        assert "error" not in row, row.get("error")
        assert row["n"] == 2
        assert row["ms"] > 0 and row["ms_min"] > 0
        assert (row["size"], row["batch"]) == (32, 1)
    for row in train.values():
        assert row["peak_mem_gb"] > 0
        assert row["images_per_s"] > 0
    (ref,) = reference
    assert ref["lightning_ms"] > 0
    assert len(ref["paired_ratios"]) == 2
    assert result["lightning_overhead_ratio"] == [ref["lightning_over_plain"]]
    assert math.isfinite(ref["lightning_over_plain"]) and ref["lightning_over_plain"] > 0
    assert result["meta"]["device"] == "cpu"

    printed = capsys.readouterr().out
    assert "| JointGAN (4 nets) | joint | fp32 | 32² | 1 |" in printed
    assert "DeblurGAN step, plain PyTorch" in printed
    assert "Lightning overhead" in printed


def test_unknown_part_is_refused(bench) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--parts", "train,nope"])
