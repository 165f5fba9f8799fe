"""Weight interpolation after fine-tuning: start + alpha * (tuned - start), by hand or picked on
a validation folder by ``python -m realblur_gan.export --start``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_NET, save_net_checkpoint
from PIL import Image
from safetensors import safe_open

from realblur_gan.export import main, pick_alpha
from realblur_gan.nets import UNet
from realblur_gan.weights.checkpoints import load_generator
from realblur_gan.weights.interpolation import (
    MismatchedNets,
    interpolate_nets,
    interpolate_state_dicts,
    weights_fingerprint,
)


def _pair() -> tuple[UNet, UNet]:
    torch.manual_seed(1)
    start = UNet(3, 3, width=4, depth=2).eval()
    torch.manual_seed(2)
    tuned = UNet(3, 3, width=4, depth=2).eval()
    return start, tuned


def test_alpha_zero_is_the_start_one_the_tuned_and_between_is_linear() -> None:
    start, tuned = _pair()
    a, b = start.state_dict(), tuned.state_dict()
    assert all(torch.equal(v, a[k]) for k, v in interpolate_state_dicts(a, b, 0.0).items())
    assert all(torch.equal(v, b[k]) for k, v in interpolate_state_dicts(a, b, 1.0).items())
    quarter = interpolate_state_dicts(a, b, 0.25)
    for key, value in quarter.items():
        torch.testing.assert_close(value, 0.75 * a[key] + 0.25 * b[key])


def test_integer_buffers_come_from_the_tuned_net_and_inputs_are_untouched() -> None:
    a = {"w": torch.zeros(2), "count": torch.tensor(3)}
    b = {"w": torch.ones(2), "count": torch.tensor(7)}
    mixed = interpolate_state_dicts(a, b, 0.5)
    assert mixed["count"].item() == 7 and mixed["count"].dtype == torch.long
    assert mixed["w"].tolist() == [0.5, 0.5]
    mixed["w"] += 1
    assert a["w"].tolist() == [0.0, 0.0] and b["w"].tolist() == [1.0, 1.0]


def test_half_precision_weights_are_mixed_in_float32() -> None:
    # bf16 keeps 8 bits of mantissa: a lerp in bf16 of two weights one step apart rounds.
    a = {"w": torch.tensor([1.0], dtype=torch.bfloat16)}
    b = {"w": torch.tensor([1.0078125], dtype=torch.bfloat16)}  # the next bf16 after 1.0
    mixed = interpolate_state_dicts(a, b, 0.9)["w"]
    assert mixed.dtype == torch.bfloat16 and mixed.item() == 1.0078125


def test_interpolated_net_keeps_the_tuned_nets_attributes() -> None:
    start, tuned = _pair()
    tuned.net_config = {"_target_": "realblur_gan.nets.UNet"}
    mixed = interpolate_nets(start, tuned, 0.5)
    assert mixed is not tuned and mixed.net_config == tuned.net_config
    before = [p.clone() for p in tuned.parameters()]
    for p, s, t in zip(mixed.parameters(), start.parameters(), tuned.parameters(), strict=True):
        torch.testing.assert_close(p, (s + t) / 2)
    assert all(torch.equal(p, q) for p, q in zip(tuned.parameters(), before, strict=True))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_outside_zero_one_is_refused(alpha: float) -> None:
    start, tuned = _pair()
    with pytest.raises(ValueError, match=r"use a value in \[0, 1\]"):
        interpolate_state_dicts(start.state_dict(), tuned.state_dict(), alpha)


def test_nets_of_different_shapes_are_refused() -> None:
    start = UNet(3, 3, width=4, depth=2)
    with pytest.raises(MismatchedNets, match="is in only one of them"):
        interpolate_nets(start, UNet(3, 3, width=4, depth=3), 0.5)
    with pytest.raises(MismatchedNets, match=r"\(8, 3, 3, 3\)|\(4, 3, 3, 3\)"):
        interpolate_nets(start, UNet(3, 3, width=8, depth=2), 0.5)


def test_the_fingerprint_names_the_weights_whatever_file_holds_them(tmp_path: Path) -> None:
    from realblur_gan.export import export_safetensors

    start, tuned = _pair()
    first = weights_fingerprint(start.state_dict())
    assert first != weights_fingerprint(tuned.state_dict())
    ckpt = save_net_checkpoint(tmp_path / "a.ckpt", start)
    exported, _ = export_safetensors(start, TINY_NET, tmp_path / "exported", "dbgan_g")
    for path in (ckpt, exported):
        assert weights_fingerprint(load_generator(path).state_dict()) == first
    with torch.no_grad():
        next(start.parameters())[0].add_(1e-6)  # one weight, barely moved
    assert weights_fingerprint(start.state_dict()) != first


# --- the export command ------------------------------------------------------------------


def _val_folder(root: Path, n: int = 2) -> Path:
    """Pairs whose blurry image is the sharp one plus a little noise: the identity net (the
    packaged test model) scores best, a random net much worse."""
    rng = np.random.default_rng(0)
    for sub in ("sharp", "blur"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        sharp = rng.uniform(0.2, 0.8, (24, 32, 3))
        blur = np.clip(sharp + rng.normal(0, 0.02, sharp.shape), 0, 1)
        Image.fromarray((sharp * 255).round().astype(np.uint8)).save(root / "sharp" / f"{i}.png")
        Image.fromarray((blur * 255).round().astype(np.uint8)).save(root / "blur" / f"{i}.png")
    return root


def _knocked_off_checkpoint(tmp_path: Path) -> Path:
    """An identity net knocked far off: every step towards it costs PSNR on ``_val_folder``."""
    tuned = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return save_net_checkpoint(tmp_path / "last.ckpt", tuned)


def test_export_writes_the_interpolated_weights_and_says_how_they_were_made(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, tuned = _pair()
    ckpt = save_net_checkpoint(tmp_path / "last.ckpt", tuned)
    out = tmp_path / "mine"
    args = [str(ckpt), "--start", "realblur-dbgan", "--alpha", "0.25", "--out", str(out)]
    assert main(args) == 0
    assert "interpolated 0.25 of the way from realblur-dbgan" in capsys.readouterr().out
    start = load_generator(packaged_weights)
    got = load_generator(out)
    for p, s, t in zip(got.parameters(), start.parameters(), tuned.parameters(), strict=True):
        torch.testing.assert_close(p, 0.75 * s + 0.25 * t)
    with safe_open(str(out / "dbgan_g.safetensors"), "pt") as f:
        made = json.loads(f.metadata()["interpolation"])
    assert made == {"start": "realblur-dbgan", "alpha": 0.25}


def test_export_picks_the_alpha_that_scores_best_on_the_validation_pairs(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, val = _knocked_off_checkpoint(tmp_path), _val_folder(tmp_path / "val")
    out = tmp_path / "mine"
    args = [str(ckpt), "--start", "realblur-dbgan", "--alpha", "1", "0.5", "0"]
    assert main([*args, "--val-dir", str(val), "--out", str(out), "--tile", "64"]) == 0
    printed = capsys.readouterr().out
    assert "alpha 0: 2 images" in printed and "<- exported" in printed
    rows = list(csv.DictReader((out / "interpolation.csv").open()))
    assert [r["alpha"] for r in rows] == ["1", "0.5", "0"]
    assert [r["exported"] for r in rows] == ["0", "0", "1"]
    psnr = {r["alpha"]: float(r["psnr"]) for r in rows}
    # The identity start reproduces the blurry input (about 34 dB from 0.02 noise).
    assert psnr["0"] > 30 > psnr["0.5"] > psnr["1"]
    assert abs(float(rows[2]["gain_vs_input"])) < 1e-3
    start = load_generator(packaged_weights)
    assert all(
        torch.equal(p, s)
        for p, s in zip(load_generator(out).parameters(), start.parameters(), strict=True)
    )


# Per alpha: (images, mean PSNR, mean gain, worst gain). The fine-tuned end has the best mean
# and one image that loses 0.6 dB; moving back towards the start trades mean for safety.
SWEEP = {
    1.0: (3, 24.0, 0.50, -0.60),
    0.7: (3, 23.9, 0.40, -0.25),
    0.5: (3, 23.8, 0.30, -0.10),
    0.0: (3, 23.5, 0.00, 0.00),
}


def test_without_a_loss_bound_the_best_mean_is_exported() -> None:
    assert pick_alpha(SWEEP) == (1.0, None)


def test_a_loss_bound_exports_the_best_mean_among_the_alphas_within_it() -> None:
    assert pick_alpha(SWEEP, max_loss=0.3) == (0.7, None)
    assert pick_alpha(SWEEP, max_loss=0.1) == (0.5, None)
    assert pick_alpha(SWEEP, max_loss=0.0) == (0.0, None)


def test_when_no_alpha_meets_the_bound_the_safest_is_exported_and_said() -> None:
    risky = {a: v for a, v in SWEEP.items() if a >= 0.7}
    alpha, note = pick_alpha(risky, max_loss=0.1)
    assert alpha == 0.7
    assert note is not None and "within 0.1 dB" in note and "(-0.25)" in note


def test_export_with_max_loss_skips_the_alphas_that_lose_too_much_on_one_image(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, val = _knocked_off_checkpoint(tmp_path), _val_folder(tmp_path / "val")
    args = [str(ckpt), "--start", "realblur-dbgan", "--alpha", "1", "0.5", "--tile", "64"]
    out = tmp_path / "mine"
    assert main([*args, "--val-dir", str(val), "--max-loss", "0.3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {r["alpha"]: r for r in csv.DictReader((out / "interpolation.csv").open())}
    # Neither alpha keeps every image within 0.3 dB: the one whose worst image loses least goes.
    assert float(rows["0.5"]["worst_gain"]) < -0.3
    assert float(rows["0.5"]["worst_gain"]) > float(rows["1"]["worst_gain"])
    assert rows["0.5"]["exported"] == "1" and rows["1"]["exported"] == "0"
    assert "no alpha keeps every image within 0.3 dB" in printed
    with safe_open(str(out / "dbgan_g.safetensors"), "pt") as f:
        made = json.loads(f.metadata()["interpolation"])
    assert made == {"start": "realblur-dbgan", "alpha": 0.5, "max_loss": 0.3}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alpha", "0.5"], "interpolate towards --start: pass --start MODEL"),
        (["--start", "realblur-dbgan"], "--start: pass --alpha A"),
        (["--start", "realblur-dbgan", "--alpha", "1.2"], "--alpha 1.2: use values in [0, 1]"),
        (
            ["--start", "realblur-dbgan", "--alpha", "0.5", "0.9"],
            "several --alpha values: pass --val-dir DIR",
        ),
        (["--start", "nowhere.ckpt", "--alpha", "0.5"], "--start nowhere.ckpt: no such file"),
        (
            ["--start", "realblur-dbgan", "--alpha", "0.5", "--max-loss", "0.3"],
            "--max-loss is checked on --val-dir: pass --val-dir DIR",
        ),
        (
            ["--start", "realblur-dbgan", "--alpha", "0.5", "--val-dir", "v", "--max-loss", "-1"],
            "--max-loss -1.0: use a loss in dB >= 0",
        ),
    ],
)
def test_bad_interpolation_options_are_one_line_and_write_nothing(
    tmp_path: Path,
    packaged_weights: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    _, tuned = _pair()
    ckpt = save_net_checkpoint(tmp_path / "last.ckpt", tuned)
    out = tmp_path / "mine"
    assert main([str(ckpt), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "dbgan_g.safetensors").exists()


def test_a_start_other_than_the_one_training_recorded_is_refused(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fine-tuned from some other net of the same shape, not the packaged (identity) model.
    other, tuned = _pair()
    ckpt = save_net_checkpoint(tmp_path / "last.ckpt", tuned, init_from=other)
    out = tmp_path / "mine"
    assert main([str(ckpt), "--start", "realblur-dbgan", "--alpha", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --start realblur-dbgan: not the weights the checkpoint was")
    assert "'start'" in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_the_recorded_start_is_accepted_and_travels_into_the_export(
    tmp_path: Path, packaged_weights: Path
) -> None:
    _, tuned = _pair()
    ckpt = save_net_checkpoint(
        tmp_path / "last.ckpt", tuned, init_from=load_generator(packaged_weights)
    )
    out = tmp_path / "mine"
    assert main([str(ckpt), "--start", "realblur-dbgan", "--alpha", "1", "--out", str(out)]) == 0
    record = load_generator(out).init_source
    assert record["fingerprint"] == weights_fingerprint(
        load_generator(packaged_weights).state_dict()
    )
    # ... so the export itself is checked against its start when interpolated again.
    again = tmp_path / "again"
    assert main([str(out), "--start", "realblur-dbgan", "--alpha", "0.5", "--out", str(again)]) == 0


def test_a_start_of_another_architecture_is_one_line(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wide = {"_target_": "realblur_gan.nets.UNet", "in_channels": 3, "out_channels": 3}
    wide |= {"width": 8, "depth": 2}
    ckpt = save_net_checkpoint(tmp_path / "last.ckpt", UNet(3, 3, width=8, depth=2), wide)
    out = str(tmp_path / "x")  # not the working folder: the claim on --out creates it
    assert main([str(ckpt), "--start", "realblur-dbgan", "--alpha", "0.5", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --start realblur-dbgan: the two nets differ")
    assert "pass the weights it started from" in err and len(err.splitlines()) == 1
