"""Evaluation: classical baselines, per-image scoring options, and the CLI's CSV and table."""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realblur_gan.camera import convolve, linear_motion_kernel, trajectory_kernel
from realblur_gan.data.io import write_image
from realblur_gan.evaluate import ScoreOptions, main, score_pair
from realblur_gan.evaluation.baselines import (
    KernelError,
    identity,
    load_kernel,
    richardson_lucy,
    wiener,
)
from realblur_gan.evaluation.metrics import (
    PSNR_CAP_DB,
    psnr,
    rgb_to_y,
    shift_grid,
    shift_overlap,
    ssim,
)
from realblur_gan.nets import UNet

TINY = {"_target_": "realblur_gan.nets.UNet", "in_channels": 3, "out_channels": 3}
TINY |= {"width": 4, "depth": 2}


def smooth_images(b: int, h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, h // 6, w // 6, generator=gen)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    """A tiny synthetic set laid out as ``data_tools.synthesize`` writes it."""
    root = tmp_path / "pairs"
    sharp = smooth_images(3)
    gen = torch.Generator().manual_seed(1)
    for i in range(3):
        kernel = trajectory_kernel(9, 0.6, gen)
        blur = convolve(sharp[i : i + 1], kernel)[0]
        write_image(root / "sharp" / f"im{i}.png", sharp[i])
        write_image(root / "blur" / f"im{i}.png", blur)
        (root / "kernels").mkdir(parents=True, exist_ok=True)
        np.save(root / "kernels" / f"im{i}.npy", kernel.numpy())
    return root


def read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------


def camera_shake(size: int) -> torch.Tensor:
    """A 13-px camera-shake kernel, zero-padded after its last row/column to ``size``.

    Padding to an even size moves the kernel's centre (pixel ``size // 2``) by one pixel, so the
    blur also shifts the image: deconvolution must use the same centring to undo it.
    """
    kernel = trajectory_kernel(13, 0.6, torch.Generator().manual_seed(3))
    return F.pad(kernel, (0, size - 13, 0, size - 13))


@pytest.mark.parametrize(
    ("kernel", "gain_db"),
    [
        (camera_shake(13), 8.0),
        (camera_shake(14), 8.0),
        # A straight stroke has true zeros in its spectrum: less is recoverable.
        (linear_motion_kernel(15, 9.0, 30.0), 3.0),
    ],
)
def test_wiener_and_rl_improve_psnr_with_the_known_kernel(
    kernel: torch.Tensor, gain_db: float
) -> None:
    sharp = smooth_images(2)
    blurry = (convolve(sharp, kernel) * 255).round() / 255  # 8-bit, as read from a file
    before = psnr(identity(blurry), sharp)
    after_wiener = psnr(wiener(blurry, kernel), sharp)
    after_rl = psnr(richardson_lucy(blurry, kernel, iterations=30), sharp)
    assert (after_wiener > before + gain_db).all(), (before, after_wiener)
    assert (after_rl > before + gain_db).all(), (before, after_rl)


def test_baselines_take_one_kernel_per_image() -> None:
    sharp = smooth_images(2)
    kernels = torch.stack([linear_motion_kernel(11, 7.0, 0.0), linear_motion_kernel(11, 7.0, 90.0)])
    blurry = convolve(sharp, kernels)
    restored = wiener(blurry, kernels)
    assert restored.shape == sharp.shape
    assert (psnr(restored, sharp) > psnr(blurry, sharp) + 5).all()
    swapped = wiener(blurry, kernels.flip(0))  # the wrong kernel must not help as much
    assert (psnr(swapped, sharp) < psnr(restored, sharp)).all()


def test_load_kernel_npy_and_peak_scaled_png_agree(tmp_path: Path) -> None:
    kernel = trajectory_kernel(13, 0.5, torch.Generator().manual_seed(0))
    np.save(tmp_path / "k.npy", kernel.numpy())
    write_image(tmp_path / "k.png", (kernel / kernel.max())[None], bit_depth=16)
    from_npy, from_png = load_kernel(tmp_path / "k.npy"), load_kernel(tmp_path / "k.png")
    assert from_npy.shape == from_png.shape == (13, 13)
    assert float(from_png.sum()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(from_npy, from_png, atol=1e-5)
    np.save(tmp_path / "zero.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(KernelError, match="all zeros"):
        load_kernel(tmp_path / "zero.npy")
    with pytest.raises(KernelError, match="not found"):
        load_kernel(tmp_path / "missing.npy")


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def test_score_pair_options_and_lpips() -> None:
    from realblur_gan.training.losses import LPIPSLoss

    sharp = smooth_images(1, 40, 40)
    lpips = LPIPSLoss(random_init_for_tests=True)
    same = score_pair(sharp, sharp, ScoreOptions(), lpips)
    assert same["psnr"] == PSNR_CAP_DB and same["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert same["lpips"] == pytest.approx(0.0, abs=1e-6)
    shifted = torch.roll(sharp, shifts=(2, 0), dims=(2, 3))
    plain = score_pair(shifted, sharp)
    tolerant = score_pair(shifted, sharp, ScoreOptions(shift=2, crop_border=3, y_channel=True))
    assert plain["psnr"] < 40 and tolerant["psnr"] == PSNR_CAP_DB
    assert (tolerant["dy"], tolerant["dx"]) == (2, 0)
    gray = score_pair(sharp.mean(1, keepdim=True), sharp)  # gray against RGB: compared in RGB
    assert np.isfinite(gray["psnr"])


def test_score_pair_shift_search_equals_the_loop_it_replaced() -> None:
    """--shift K: the vectorised search gives the scores of scoring every shift in turn."""
    sharp = smooth_images(1, 56, 60, seed=5)
    gen = torch.Generator().manual_seed(6)
    restored = torch.roll(sharp, (-1, 2), (2, 3)) + 0.03 * torch.randn(sharp.shape, generator=gen)
    restored = restored.clamp(0, 1)
    got = score_pair(restored, sharp, ScoreOptions(shift=3, y_channel=True))
    pred, target = rgb_to_y(restored), rgb_to_y(sharp)
    scores = {s: (psnr(*shift_overlap(pred, target, *s)), ssim(*shift_overlap(pred, target, *s)))
              for s in shift_grid(3)}  # fmt: skip
    best = max(scores, key=lambda s: float(scores[s][0]))
    assert (got["dy"], got["dx"]) == best == (-1, 2)
    assert got["psnr"] == pytest.approx(float(scores[best][0]), abs=1e-4)
    assert got["ssim"] == pytest.approx(max(float(v[1]) for v in scores.values()), abs=1e-5)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def test_cli_model_and_baselines_write_csv_and_table(
    tmp_path: Path,
    pairs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))  # no LPIPS weights there
    net = UNet(3, 3, width=4, depth=2)
    ckpt = tmp_path / "m.ckpt"
    state = {f"dbgan_g.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "net_configs": {"dbgan_g": TINY}}, ckpt)
    out = tmp_path / "eval"
    code = main(
        [
            *("--blur", str(pairs / "blur"), "--sharp", str(pairs / "sharp")),
            *("--checkpoint", str(ckpt), "--kernels", str(pairs / "kernels")),
            *("--baselines", "identity,wiener,rl", "--out", str(out), "--save-restored"),
            *("--rl-iterations", "10"),
        ]
    )
    assert code == 0
    rows = read_rows(out / "metrics.csv")
    assert len(rows) == 4 * 3
    assert {r["method"] for r in rows} == {
        "dbgan_g (m.ckpt)",
        "identity (blurry input)",
        "Wiener (nsr 0.01)",
        "Richardson–Lucy (10 it.)",
    }
    mean = {
        m: np.mean([float(r["psnr"]) for r in rows if r["method"] == m])
        for m in {r["method"] for r in rows}
    }
    assert mean["Wiener (nsr 0.01)"] > mean["identity (blurry input)"] + 3
    printed = capsys.readouterr().out
    assert "| dbgan_g (m.ckpt) | 3 |" in printed and "n/a¹" in printed
    assert "¹ LPIPS not computed: pretrained weights not found" in printed
    assert (out / "summary.md").read_text().startswith("| method |")
    assert len(list((out / "Wiener_nsr_0.01").glob("*.png"))) == 3


def test_cli_restored_folder_with_shift_and_missing_file(
    tmp_path: Path, pairs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from realblur_gan.training import losses

    monkeypatch.setattr(
        losses, "LPIPSLoss", functools.partial(losses.LPIPSLoss, random_init_for_tests=True)
    )
    restored = tmp_path / "restored"
    sharp = smooth_images(3)
    for i in range(2):  # im2 has no restored image
        shifted = torch.roll(sharp[i], shifts=(-1, 2), dims=(1, 2))
        write_image(restored / f"im{i}.tif", shifted, bit_depth=16)
    out = tmp_path / "eval"
    args = ["--restored", str(restored), "--sharp", str(pairs / "sharp"), "--out", str(out)]
    assert main([*args, "--shift", "2", "--y-channel"]) == 0
    captured = capsys.readouterr()
    assert "no restored image for 'im2'" in captured.err
    rows = read_rows(out / "metrics.csv")
    assert [r["image"] for r in rows] == ["im0", "im1"]
    assert all(float(r["psnr"]) > 60 and float(r["lpips"]) < 0.05 for r in rows)
    assert all((r["dy"], r["dx"]) == ("-1", "2") for r in rows)
    assert "best shift within ±2 px" in captured.out and "n/a" not in captured.out


def test_cli_scores_the_packaged_model_by_default(
    tmp_path: Path, pairs: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--blur", str(pairs / "blur"), "--sharp", str(pairs / "sharp"), "--no-lpips"]
    assert main([*argv, "--baselines", "identity", "--out", str(tmp_path / "a")]) == 0
    rows = read_rows(tmp_path / "a" / "metrics.csv")
    assert {r["method"] for r in rows} == {"dbgan_g (realblur-dbgan)", "identity (blurry input)"}
    # The stand-in packaged model is the identity: it scores what the blurry input scores.
    by = {(r["method"], r["image"]): float(r["psnr"]) for r in rows}
    for method, image in by:
        assert by[(method, image)] == pytest.approx(by[("identity (blurry input)", image)], abs=0.1)
    capsys.readouterr()
    assert main([*argv, "--no-model", "--baselines", "identity", "--out", str(tmp_path / "b")]) == 0
    methods = {r["method"] for r in read_rows(tmp_path / "b" / "metrics.csv")}
    assert methods == {"identity (blurry input)"}
    # --checkpoint restores --blur: without it there is nothing to run the model on.
    assert main(["--sharp", str(pairs / "sharp"), "--checkpoint", "m.ckpt"]) == 2
    assert "pass --blur" in capsys.readouterr().err


def test_cli_refuses_inconsistent_options(
    tmp_path: Path, pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sharp = ["--sharp", str(pairs / "sharp"), "--out", str(tmp_path / "e"), "--no-lpips"]
    assert main([*sharp, "--baselines", "wiener", "--blur", str(pairs / "blur")]) == 2
    assert "--kernels" in capsys.readouterr().err
    assert main([*sharp, "--baselines", "bogus", "--blur", str(pairs / "blur")]) == 2
    assert "unknown baseline" in capsys.readouterr().err
    assert main(sharp) == 2
    assert "nothing to score" in capsys.readouterr().err


def test_cli_self_ensemble_is_named_in_the_table(
    tmp_path: Path, pairs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))
    ckpt = tmp_path / "m.ckpt"
    state = {f"dbgan_g.{k}": v for k, v in UNet(3, 3, width=4, depth=2).state_dict().items()}
    torch.save({"state_dict": state, "net_configs": {"dbgan_g": TINY}}, ckpt)
    scores = {}
    for name, extra in (("single", []), ("ensemble", ["--self-ensemble"])):
        out = tmp_path / name
        argv = ["--blur", str(pairs / "blur"), "--sharp", str(pairs / "sharp"), "--out", str(out)]
        assert main([*argv, "--checkpoint", str(ckpt), "--no-lpips", *extra]) == 0
        rows = read_rows(out / "metrics.csv")
        scores[name] = {(r["method"], r["image"]): float(r["psnr"]) for r in rows}
    assert {method for method, _ in scores["ensemble"]} == {"dbgan_g (m.ckpt), self-ensemble x8"}
    assert sorted(scores["ensemble"].values()) != sorted(scores["single"].values())
