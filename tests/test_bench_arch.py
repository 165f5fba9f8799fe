"""The generator probe (``scripts/bench_arch.py``): fair arms, a time-based schedule, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from PIL import Image

from realblur_gan.evaluation.metrics import psnr


@pytest.fixture(scope="module")
def probe():
    return load_script("bench_arch")


@pytest.mark.parametrize("arm", ["unet", "unet_deep", "srn", "nafnet"])
def test_every_arm_keeps_shape_and_channel_means(probe, arm):
    torch.manual_seed(0)
    net = probe.ARMS[arm]()
    x = torch.rand(2, 3, 64, 64)
    y = net(x)
    assert y.shape == x.shape
    # Deblurring does not move channel means: every arm is held to it, so none wins by tone.
    torch.testing.assert_close(y.mean((-2, -1)), x.mean((-2, -1)), atol=1e-5, rtol=0)


def test_arms_receptive_fields_differ_as_named(probe):
    """The deep U-Net downsamples 64x, the packaged scale net 16x; SRN adds two coarser passes."""
    assert probe.ARMS["unet_deep"]().stride == 64
    assert probe.ARMS["unet"]().stride == 16
    assert probe.ARMS["srn"]().num_scales == 3


def test_schedule_warms_up_in_steps_and_decays_in_time(probe):
    f = probe.lr_factor
    assert f(0, 0.0, 100.0, warmup=50, floor=0.01) == pytest.approx(1 / 50)
    assert f(49, 0.0, 100.0, warmup=50, floor=0.01) == pytest.approx(1.0)
    assert f(500, 50.0, 100.0, warmup=50, floor=0.01) == pytest.approx(0.505)
    # At or past the budget: the floor, whatever the step.
    assert f(10_000, 100.0, 100.0, warmup=50, floor=0.01) == pytest.approx(0.01)
    assert f(10_000, 150.0, 100.0, warmup=50, floor=0.01) == pytest.approx(0.01)


def _write_pairs(root: Path, n: int = 2, size: int = 48) -> None:
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        sharp = rng.random((size, size, 3))
        blur = (sharp + np.roll(sharp, 2, axis=1) + np.roll(sharp, -2, axis=1)) / 3
        Image.fromarray((sharp * 255).astype(np.uint8)).save(root / "sharp" / f"{i}.png")
        Image.fromarray((blur * 255).astype(np.uint8)).save(root / "blur" / f"{i}.png")


def test_identity_scores_zero_gain(probe, tmp_path):
    _write_pairs(tmp_path)
    pairs = probe.load_pairs(tmp_path)
    assert [p[0] for p in pairs] == ["0", "1"]
    assert pairs[0][3] == pytest.approx(float(psnr(pairs[0][1], pairs[0][2])))
    result = probe.score(torch.nn.Identity(), pairs)
    assert result["gain"] == pytest.approx(0.0, abs=1e-6)
    assert set(result["per_image"]) == {"0", "1"}


def test_probe_trains_every_arm_for_its_time_and_writes_results(
    probe, tmp_path, demo_cache, monkeypatch
):
    from conftest import TINY

    monkeypatch.setenv("REALBLUR_GAN_DATA", str(demo_cache))

    val = tmp_path / "val"
    _write_pairs(val)
    out = tmp_path / "arch.json"
    overrides = [o for o in TINY if not o.startswith(("+trainer", "trainer", "model."))]
    probe.main(
        [
            "--arms",
            "unet,nafnet",
            "--minutes",
            "0.05",
            "--batches",
            "2",
            "--val-dir",
            str(val),
            "--threads",
            "1",
            "--json",
            str(out),
            "--save",
            str(tmp_path / "weights"),
            *overrides,
        ]
    )
    arms = json.loads(out.read_text())["arms"]
    assert list(arms) == ["unet", "nafnet"]
    for result in arms.values():
        assert result["steps"] >= 1
        assert result["params"] > 0
        for weights in ("raw", "ema"):
            assert np.isfinite(result[weights]["gain"])
            assert result[weights]["worst"] <= result[weights]["gain"] + 1e-9
    # The weights load as any exported model's do.
    saved = sorted(p.name for p in (tmp_path / "weights").glob("*.safetensors"))
    assert saved == [f"{a}{e}.safetensors" for a in ("nafnet", "unet") for e in ("", "_ema")]
    from realblur_gan import Deblurrer

    deblur = Deblurrer.from_pretrained(tmp_path / "weights" / "unet_ema.safetensors")
    assert deblur(torch.rand(1, 3, 40, 56)).shape == (1, 3, 40, 56)


def test_a_blurry_image_without_its_sharp_twin_is_one_line(probe, tmp_path, capsys):
    _write_pairs(tmp_path)
    (tmp_path / "sharp" / "1.png").unlink()
    with pytest.raises(SystemExit):
        probe.main(["--val-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert "1.png" in err[-1] and "Traceback" not in "\n".join(err)


def test_unknown_arm_is_refused(probe, tmp_path):
    with pytest.raises(SystemExit):
        probe.main(["--arms", "resnet", "--val-dir", str(tmp_path)])
