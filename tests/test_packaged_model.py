"""The DBGAN shipped in realblur_gan/weights/: what it is, that it runs offline, that it deblurs.

The fixtures in conftest stand in a tiny identity net for the packaged model; these tests read
the real file this checkout ships.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from PIL import Image
from safetensors import safe_open

from realblur_gan.data.demo import make_scene
from realblur_gan.data.io import read_image
from realblur_gan.evaluation.metrics import psnr
from realblur_gan.nets import UNet
from realblur_gan.nets.padding import forward_padded
from realblur_gan.predict import main
from realblur_gan.weights.checkpoints import load_generator
from realblur_gan.weights.model_zoo import DEFAULT_MODEL, MODELS, file_sha256, packaged_model

PACKAGED_MODEL = MODELS[DEFAULT_MODEL].path
CARD = PACKAGED_MODEL.parent / "MODEL_CARD.md"
FRAMES = SHARED_DATA / "gopro_frames"


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return load_generator(packaged_model()).eval()


def test_the_package_ships_a_few_megabytes_of_dbgan_weights() -> None:
    assert packaged_model() == PACKAGED_MODEL
    # The registry's hash is the file's: packaged_model() verified it, and the test says so.
    assert file_sha256(PACKAGED_MODEL) == MODELS[DEFAULT_MODEL].sha256
    assert PACKAGED_MODEL.stat().st_size < 10 * 2**20
    with safe_open(str(PACKAGED_MODEL), "pt") as f:
        meta = f.metadata()
    assert meta["net"] == "dbgan_g" and '"_target_": "realblur_gan.nets.' in meta["net_config"]


def test_the_model_card_is_filled_in_and_names_the_file() -> None:
    card = CARD.read_text()
    assert "ships no weights yet" not in card
    assert not re.search(r"_\(.*\)_", card), "a placeholder section is left in the card"
    for needed in ("Training", "Evaluation", "Intended use and limitations", "Licence"):
        assert f"## {needed}" in card
    assert "python scripts/experiment.py" in card  # the command that trained it


def test_it_runs_at_any_size_and_stays_close_to_its_input(net: torch.nn.Module) -> None:
    assert isinstance(net, UNet)
    scenes = [np.asarray(make_scene(seed, 64))[:37, :53] for seed in (0, 1)]
    x = torch.from_numpy(np.stack(scenes)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        y = forward_padded(net, x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # A global-residual restorer: a sharpened picture of its input, not a new one.
    assert (y - x).abs().mean() < 0.05


def test_realblur_deblur_needs_no_checkpoint(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    gen = torch.Generator().manual_seed(0)
    pixels = (torch.rand(48, 40, 3, generator=gen) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(src)
    assert main([str(src), "--out", str(tmp_path / "out")]) == 0
    out, _ = read_image(tmp_path / "out" / "photo.png")
    assert out.shape == (3, 48, 40)


@pytest.mark.slow
@pytest.mark.skipif(not FRAMES.is_dir(), reason=f"no {FRAMES}")
def test_it_deblurs_real_gopro_blur_from_frames_it_never_trained_on(
    net: torch.nn.Module, tmp_path: Path
) -> None:
    """Averages of the validation window (13 pairs, whole 640x360 frames): +1.18 dB measured."""
    from realblur_gan.camera import SimpleBlur
    from realblur_gan.data.frames import FramesDataModule

    frames = FramesDataModule(
        FRAMES, tmp_path, downscale=2, val_stride=2, synthetic_blur=SimpleBlur(5)
    )
    cache = frames.prepare_frames()
    blurs = sorted((cache / "val" / "blur").rglob("*.png"))
    assert len(blurs) == 13
    gains = []
    for blur_path in blurs:
        sharp_path = cache / "val" / "sharp" / blur_path.relative_to(cache / "val" / "blur")
        blur, sharp = read_image(blur_path)[0][None], read_image(sharp_path)[0][None]
        with torch.no_grad():
            restored = forward_padded(net, blur).clamp(0, 1)
        gains.append((psnr(restored, sharp) - psnr(blur, sharp)).item())
    assert sum(gains) / len(gains) > 1.0
    assert all(g > 0 for g in gains), gains  # measured: +0.95 to +1.38 dB, every pair
