"""The spine: schemes compose, every stage trains, files and numbers come out."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from realblur_gan.config import available_schemes
from realblur_gan.modules import BlurGAN, DeblurGAN, JointGAN
from realblur_gan.train import NoSchemeError, format_summary, run

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, cwd: Path, env_extra: dict[str, str] | None = None):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "realblur_gan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_schemes_are_joint_and_separate():
    assert available_schemes() == ["joint", "separate"]


@pytest.mark.parametrize("scheme", ["joint", "separate"])
def test_every_stage_of_each_scheme_instantiates(tiny_config, scheme):
    cfg = tiny_config(scheme)
    expected = {
        "joint": {"pretrain_bgan": BlurGAN, "joint": JointGAN},
        "separate": {"pretrain_bgan": BlurGAN, "bgan": BlurGAN, "dbgan": DeblurGAN},
    }[scheme]
    assert list(cfg.stage_order) == list(expected)
    for name, cls in expected.items():
        module = instantiate(cfg.stages[name].module)
        assert isinstance(module, cls)
        sharp = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            out = module.bgan_g(sharp) if isinstance(module, BlurGAN) else module(sharp)
        assert out.shape == sharp.shape


def test_config_without_scheme_raises_naming_the_schemes(tiny_config):
    with pytest.raises(NoSchemeError, match=r"\+scheme=joint or \+scheme=separate"):
        run(tiny_config(None))


def test_bare_command_exits_nonzero_with_one_line(tmp_path):
    proc = _cli(cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "+scheme=joint" in lines[0] and "+scheme=separate" in lines[0]
    assert not (tmp_path / "outputs").exists()  # no run dir for a refused command


def test_scheme_without_plus_is_explained(tmp_path):
    proc = _cli("scheme=joint", cwd=tmp_path)
    assert proc.returncode != 0
    assert "+scheme=joint" in proc.stderr.strip().splitlines()[-1]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_joint_scheme_end_to_end_with_wandb(tiny_config):
    cfg = tiny_config("joint", "logger=wandb")
    result = run(cfg)
    out = Path(cfg.paths.output_dir)
    assert (out / "config.yaml").is_file()
    for stage in ("pretrain_bgan", "joint"):
        assert (out / "checkpoints" / stage / "last.ckpt").is_file()
    # The joint checkpoint holds all four nets, loadable without unpickling objects.
    state = torch.load(result.checkpoints["joint"], weights_only=True)["state_dict"]
    assert {k.split(".")[0] for k in state} >= {"bgan_g", "bgan_d", "dbgan_g", "dbgan_d"}
    # One offline W&B run per stage, with metrics history and image panels.
    assert len(result.wandb_dirs) == 2
    for run_dir in result.wandb_dirs:
        assert run_dir.name.startswith("offline-run-")
        assert list(run_dir.glob("*.wandb"))
    assert list((out / "panels" / "joint").glob("val_panel_*.png"))
    # Summary numbers exist and are plausible PSNR/SSIM values.
    m = result.metrics
    for key in ("val/psnr", "val/ssim", "val/psnr_input", "val/ssim_input"):
        assert key in m
    assert 5.0 < m["val/psnr_input"] < 60.0 and 0.0 < m["val/ssim"] <= 1.0
    assert "blurry input" in format_summary(result)


def test_separate_scheme_end_to_end_from_the_cli_with_csv(tmp_path, demo_cache):
    from conftest import TINY

    out = tmp_path / "run"
    proc = _cli(
        "+scheme=separate",
        "logger=csv",
        *TINY,
        f"paths.data_dir={demo_cache}",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in ("pretrain_bgan", "bgan", "dbgan"):
        assert (out / "checkpoints" / stage / "last.ckpt").is_file()
        assert (out / "csv" / stage / "metrics.csv").is_file()
    rows = _read_csv(out / "csv" / "dbgan" / "metrics.csv")
    columns = set(rows[0])
    assert {"train/dbgan/loss_g", "train/dbgan/d_real", "val/psnr"} <= columns
    assert any(r["val/psnr"] for r in rows)
    # The summary is printed last: where things went, and the PSNR table.
    assert "restored" in proc.stdout and "blurry input" in proc.stdout
    assert str(out / "checkpoints" / "dbgan" / "last.ckpt") in proc.stdout
    assert (out / ".hydra" / "config.yaml").is_file() and (out / "config.yaml").is_file()


def test_no_logger_still_trains_and_summarises(tiny_config):
    cfg = tiny_config("joint", "logger=none")
    result = run(cfg)
    assert result.wandb_dirs == [] and result.csv_dirs == []
    assert "val/psnr" in result.metrics


def test_separate_stage_hands_bgan_weights_to_the_next_stage(tiny_config):
    cfg = tiny_config("separate", "logger=none")
    result = run(cfg)
    bgan = torch.load(result.checkpoints["bgan"], weights_only=True)["state_dict"]
    dbgan = torch.load(result.checkpoints["dbgan"], weights_only=True)["state_dict"]
    frozen_keys = [k for k in bgan if k.startswith("bgan_g.")]
    assert frozen_keys
    # DBGAN's stage kept BGAN frozen: its generator weights are exactly stage 2's.
    for key in frozen_keys:
        torch.testing.assert_close(dbgan[key], bgan[key])


def test_val_lpips_is_logged_when_backbone_weights_are_present(tiny_config, tmp_path):
    import torchvision

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    # Stand-in weights with torchvision's layout: this checks the wiring, not the numbers.
    torch.save(
        torchvision.models.alexnet().state_dict(), hub / "checkpoints" / "alexnet-owt-7be5be79.pth"
    )
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    try:
        result = run(tiny_config("joint", "logger=csv"))
    finally:
        torch.hub.set_dir(before)
    rows = _read_csv(result.csv_dirs[-1] / "metrics.csv")
    assert any(r.get("val/lpips") for r in rows)
    assert "val/lpips" in result.metrics


def test_val_lpips_is_skipped_without_weights(tiny_config, tmp_path):
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty_hub"))
    try:
        result = run(tiny_config("joint", "logger=none"))
    finally:
        torch.hub.set_dir(before)
    assert "val/psnr" in result.metrics and "val/lpips" not in result.metrics


def test_channels_last_switch_trains(tiny_config):
    result = run(tiny_config("joint", "logger=none", "perf.channels_last=true"))
    assert torch.isfinite(torch.tensor(result.metrics["val/psnr"]))
