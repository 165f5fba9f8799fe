"""scripts/bench: stages built by build_stage, real steps timed through a Trainer, and their time
split into the modules' torch.profiler ranges (absent ranges listed, never an error)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.profiler import record_function

from realblur_gan.training.config import CONFIG_DIR
from realblur_gan.training.runner import NET_NAMES

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The ``bench`` package of ``scripts/``, with its ``cli`` and ``ranges`` modules loaded."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        importlib.import_module("bench.cli")
        return importlib.import_module("bench")
    finally:
        sys.path.remove(str(SCRIPTS))


def stage_module_config(scheme: str, stage: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"+scheme={scheme}"]).stages[stage].module


def test_train_rows_time_build_stage_modules_by_range(bench, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    bench.cli.main(["--quick", "--parts", "train", "--sizes", "32", "--json", str(out)])

    result = json.loads(out.read_text())
    rows = {r["stage"]: r for r in result["rows"]}
    assert list(rows) == ["pretrain_bgan", "bgan", "dbgan", "joint"]
    ranges = set(bench.ranges.RANGES)
    for stage, row in rows.items():
        assert "error" not in row, row.get("error")
        # The module is the stage config's class, with the net configs only build_stage records.
        module_cfg = stage_module_config(row["scheme"], stage)
        assert row["target"] == module_cfg._target_
        assert module_cfg._target_.rsplit(".", 1)[1] == row["module"]
        assert {n for n in NET_NAMES if module_cfg.get(n) is not None} <= set(row["nets"])
        assert (row["variant"], row["size"], row["batch"], row["device"]) == ("fp32", 32, 1, "cpu")
        assert row["n"] == 2 and len(row["warmup_ms"]) == 1
        assert 0 < row["ms_min"] <= row["ms"] <= row["ms_max"]
        # Every range found is a known one and part of its step or validation batch.
        assert row["profiled_steps"] == 1 and row["val_batches"] == 1
        assert set(row["ranges_ms"]) <= ranges and row["val_ranges_ms"].keys() == {"validation"}
        assert all(0 < ms < row["profiled_step_ms"] for ms in row["ranges_ms"].values())
        assert 0 < row["val_ranges_ms"]["validation"] <= row["val_batch_ms"]
        assert 0 < row["outside_ranges_ms"] < row["profiled_step_ms"]
        found = set(row["ranges_ms"]) | set(row["val_ranges_ms"])
        assert set(row["ranges_absent"]) == ranges - found
    g_step = {"generator_step"}
    assert set(rows["pretrain_bgan"]["ranges_ms"]) == {"bgan/d_step", "bgan/g_loss"} | g_step
    assert set(rows["bgan"]["ranges_ms"]) == {"bgan/d_step", "bgan/g_loss"} | g_step
    assert set(rows["dbgan"]["ranges_ms"]) == {"dbgan/d_step", "dbgan/g_loss", "ema"} | g_step
    assert set(rows["joint"]["ranges_ms"]) == ranges - {"validation"}

    printed = capsys.readouterr().out
    assert "| joint | JointGAN | fp32 | 32² | 1 |" in printed
    assert "| dbgan | fp32 | 32² | 1 |" in printed  # the ranges table


def test_switches_reach_the_trainer_and_build_stage_as_overrides(bench) -> None:
    argv = ["--quick", "--parts", "switches", "--sizes", "32", "--repeats", "1"]
    result = bench.cli.main([*argv, "--val-batches", "0"])

    rows = {r["switch"]: r for r in result["rows"]}
    assert list(rows) == [None, "bf16-mixed", "contiguous", "compile"]
    assert {r["stage"] for r in rows.values()} == {"dbgan"}
    assert rows[None]["variant"] == "fp32" and rows[None]["channels_last"]  # the default
    bf16 = rows["bf16-mixed"]
    assert (bf16["precision"], bf16["variant"]) == ("bf16-mixed", "bf16-mixed")
    assert "trainer.precision=bf16-mixed" in bf16["overrides"]
    contiguous = rows["contiguous"]
    assert contiguous["variant"] == "fp32+contiguous" and not contiguous["channels_last"]
    assert contiguous["ms"] > 0
    assert "--quick" in rows["compile"]["skipped"]
    for row in (rows[None], bf16, rows["contiguous"]):
        assert "error" not in row, row.get("error")
        assert row["val_batches"] == 0 and row["val_ranges_ms"] == {}
        assert "validation" in row["ranges_absent"]


def test_summary_nests_ranges_and_lists_the_absent(bench) -> None:
    ranges = bench.ranges
    x = torch.randn(32, 32, requires_grad=True)
    with torch.profiler.profile() as prof:
        for _ in range(2):
            with record_function(ranges.TRAIN_BATCH):
                with record_function("generator_step"), record_function("ema"):
                    (x @ x).sum().backward()
                (x * 2).sum().item()  # outside every range: a scalar read
        with record_function(ranges.VAL_BATCH):
            x.sum()
        with record_function("validation"):  # outside any batch: not counted
            x.sum()
    cpu = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CPU]

    summary = ranges.summarise(cpu)
    assert (summary["profiled_steps"], summary["val_batches"]) == (2, 1)
    opened = ["generator_step", "ema"]
    assert list(summary["ranges_ms"]) == opened
    assert 0 < summary["ranges_ms"]["ema"] <= summary["ranges_ms"]["generator_step"]
    # ema lies inside generator_step: the rest of the step subtracts the outer range only.
    outside = summary["profiled_step_ms"] - summary["ranges_ms"]["generator_step"]
    assert summary["outside_ranges_ms"] == pytest.approx(outside)
    assert summary["val_ranges_ms"] == {}
    assert summary["ranges_absent"] == [r for r in ranges.RANGES if r not in opened]
    assert summary["scalar_reads_per_step"] == 1
    assert "ranges_device_ms" not in summary  # no kernels on a CPU

    empty = ranges.summarise([])  # no profiled step at all
    assert (empty["profiled_steps"], empty["ranges_ms"]) == (0, {})
    assert empty["ranges_absent"] == list(ranges.RANGES)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without")
def test_cuda_without_a_gpu_is_one_line(bench, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.cli.main(["--device", "cuda"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda: no CUDA device") and "\n" not in err


@pytest.mark.parametrize(
    ("part", "says"), [("reference", "hand copy"), ("profile", "ranges_ms"), ("nope", "choose")]
)
def test_unknown_or_removed_part_is_one_line(bench, capsys, part: str, says: str) -> None:
    with pytest.raises(SystemExit):
        bench.cli.main(["--parts", f"train,{part}"])
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --parts {part}:") and says in err and "\n" not in err


@pytest.mark.slow  # ~2 min on 2 busy cores: two datamodules, two loader epochs, a short fit
def test_feed_part_times_the_data_side_of_real_datamodules(bench) -> None:
    result = bench.cli.main(["--quick", "--parts", "feed", "--warmup", "1"])
    rows = {r["data"].split(",")[0]: r for r in result["rows"]}
    assert list(rows) == ["demo", "folders"]
    for row in rows.values():
        assert "error" not in row, row.get("error")
        assert row["part"] == "feed" and row["n"] == 2 and row["ms"] > 0
        assert 0 <= row["wait_share"] < 1 and row["data_cpu_ms"] > 0
        assert row["data_cpu_share"] == pytest.approx(row["data_cpu_ms"] / row["ms"])
    assert (rows["demo"]["crop"], rows["folders"]["crop"]) == (64, 256)  # each config's own
    # The decoded photos are cached: later epochs cost less than the first.
    assert rows["folders"]["data_cpu_ms"] < rows["folders"]["data_cpu_first_epoch_ms"]


def test_documented_command_runs_the_package() -> None:
    # `python scripts/bench.py` must import the package scripts/bench/, not itself.
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS.parent)}
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--parts", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --parts nope: no such part; choose from " + ",".join(
        ("train", "switches", "infer", "blur", "data", "feed")
    )
