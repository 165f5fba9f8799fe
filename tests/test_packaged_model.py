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
from realblur_gan.nets import MultiScaleGenerator, NAFNet, OutputAverage
from realblur_gan.nets.padding import forward_padded
from realblur_gan.predict import main
from realblur_gan.weights.checkpoints import load_generator
from realblur_gan.weights.model_zoo import (
    DEFAULT_MODEL,
    MODELS,
    file_sha256,
    packaged_model,
    verified_path,
)

PACKAGED_MODEL = MODELS[DEFAULT_MODEL].path
CARD = PACKAGED_MODEL.parent / "MODEL_CARD.md"
OTHER_SCENES = SHARED_DATA / "gopro_pairs_other_scenes"


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return load_generator(packaged_model()).eval()


def test_the_package_ships_a_few_megabytes_of_dbgan_weights() -> None:
    assert packaged_model() == PACKAGED_MODEL
    # The registry's hash is the file's: packaged_model() verified it, and the test says so.
    assert file_sha256(PACKAGED_MODEL) == MODELS[DEFAULT_MODEL].sha256
    # 3.74 M + 0.44 M float32 parameters: 16 MB.
    assert PACKAGED_MODEL.stat().st_size < 17 * 2**20
    with safe_open(str(PACKAGED_MODEL), "pt") as f:
        meta = f.metadata()
    assert meta["net"] == "dbgan_g" and '"_target_": "realblur_gan.nets.' in meta["net_config"]


def test_the_model_card_is_filled_in_and_names_the_file() -> None:
    card = CARD.read_text()
    assert "ships no weights yet" not in card
    assert not re.search(r"_\(.*\)_", card), "a placeholder section is left in the card"
    for needed in ("Training", "Evaluation", "Intended use and limitations", "Licence"):
        assert f"## {needed}" in card
    assert "+experiment=packaged" in card  # the command that trained it


def test_it_is_the_mean_of_a_nafnet_and_the_scale_recurrent_net(net: torch.nn.Module) -> None:
    assert isinstance(net, OutputAverage) and net.weights == [0.5, 0.5]
    naf, srn = net.nets
    assert isinstance(naf, NAFNet) and naf.keep_mean
    assert isinstance(srn, MultiScaleGenerator) and srn.share_weights
    # Each member is also packaged alone (the second is where own-data fine-tuning starts):
    # the very same weights.
    for member, name in ((naf, "realblur-dbgan-nafnet"), (srn, "realblur-dbgan-srn")):
        alone = load_generator(verified_path(name))
        assert alone.state_dict().keys() == member.state_dict().keys()
        for key, value in alone.state_dict().items():
            assert torch.equal(member.state_dict()[key], value), (name, key)
    assert net.stride == 64


def test_it_runs_at_any_size_and_stays_close_to_its_input(net: torch.nn.Module) -> None:
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
@pytest.mark.skipif(not OTHER_SCENES.is_dir(), reason=f"no {OTHER_SCENES}")
def test_it_deblurs_real_gopro_blur_of_scenes_it_never_saw(
    net: torch.nn.Module, tmp_path: Path
) -> None:
    """The benchmark's first part: 6 whole 1280x720 pairs, +0.32 dB measured (+0.04 to +0.71)."""
    from realblur_gan.evaluation.generalisation import BenchmarkData, run_benchmark
    from realblur_gan.inference.tiling import deblur_image

    data = BenchmarkData.from_root(SHARED_DATA)
    result = run_benchmark(lambda x: deblur_image(net, x, 512), data, tmp_path, parts=["gopro"])
    gains = [row["gain"] for row in result.rows]
    assert len(gains) == 6
    assert sum(gains) / len(gains) > 0.25
    assert min(gains) > 0.0, gains  # every unseen scene gains
    assert all(row["colour_kept"] for row in result.rows)
