"""The Python API: ``Deblurrer`` takes PIL, numpy and torch images and returns each in kind.

Most tests wrap an identity U-Net (``zero_residual_``), so a correct round trip gives the input
back to within one quantisation step; a wrong scale (a uint8 tensor read as floats) would not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from realblur_gan import Deblurrer
from realblur_gan.errors import UserError
from realblur_gan.inference.image_kinds import ImageInputError
from realblur_gan.nets import UNet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def identity() -> Deblurrer:
    return Deblurrer(UNet(3, 3, width=4, depth=2).zero_residual_(), device="cpu", tile=None)


def _pixels(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    "array",
    [
        _pixels(20, 30, 3),
        _pixels(20, 30),
        _pixels(20, 30, 1),
        (_pixels(20, 30, 3).astype(np.uint16) * 257),
        _pixels(20, 30, 3).astype(np.float32) / 255,
        _pixels(20, 30).astype(np.float64) / 255,
        _pixels(20, 30, 3).astype(np.float16) / 255,
    ],
    ids=["uint8 rgb", "uint8 gray 2d", "uint8 gray hw1", "uint16", "float32", "float64", "f16"],
)
def test_numpy_comes_back_with_its_shape_dtype_and_values(identity, array) -> None:
    out = identity(array)
    assert isinstance(out, np.ndarray) and out.shape == array.shape and out.dtype == array.dtype
    step = {np.uint8: 1, np.uint16: 1}.get(array.dtype.type, 1 / 255 + 1e-3)
    assert np.abs(out.astype(np.float64) - array.astype(np.float64)).max() <= step


def test_alpha_passes_through_untouched(identity) -> None:
    rgba = _pixels(16, 24, 4)
    out = identity(rgba)
    assert out.shape == rgba.shape and np.array_equal(out[..., 3], rgba[..., 3])
    pil = identity(Image.fromarray(rgba, "RGBA"))
    assert pil.mode == "RGBA" and np.array_equal(np.asarray(pil)[..., 3], rgba[..., 3])
    tensor = torch.rand(2, 16, 24)  # gray + alpha
    assert torch.equal(identity(tensor)[1], tensor[1])


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "YCbCr", "I;16", "I"])
def test_pil_images_keep_their_mode_and_size(identity, mode) -> None:
    image = Image.fromarray(_pixels(20, 30, 3)).convert(mode)
    out = identity(image)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == image.size
    if mode in ("L", "RGB"):  # the identity net: the same pixels back
        assert np.abs(np.asarray(out, np.int16) - np.asarray(image, np.int16)).max() <= 1
    if mode == "P":
        assert out.getpalette() == image.getpalette()


def test_float_pil_and_bilevel_pil(identity) -> None:
    gray = Image.fromarray(np.random.default_rng(0).random((12, 10), dtype=np.float32))
    assert identity(gray).mode == "F"
    assert identity(Image.new("1", (10, 12), 1)).mode == "1"


def test_tensors_keep_shape_dtype_and_device(identity) -> None:
    chw = torch.rand(3, 20, 30)
    out = identity(chw)
    assert out.shape == chw.shape and out.dtype == chw.dtype
    torch.testing.assert_close(out, chw, atol=1e-5, rtol=0)
    batch = torch.rand(2, 1, 20, 30, dtype=torch.float16)
    out = identity(batch)
    assert out.shape == batch.shape and out.dtype == torch.float16
    assert out.device == batch.device


def test_a_uint8_tensor_is_read_as_0_to_255_not_returned_white(identity) -> None:
    pixels = torch.from_numpy(_pixels(3, 32, 32))
    out = identity(pixels)
    assert out.dtype == torch.uint8 and out.shape == pixels.shape
    assert (out.int() - pixels.int()).abs().max() <= 1
    assert float(out.float().mean()) == pytest.approx(float(pixels.float().mean()), abs=1)


def test_a_list_of_images_comes_back_as_a_list(identity) -> None:
    images = [_pixels(8, 8), torch.rand(3, 8, 8)]
    out = identity(images)
    assert isinstance(out, list) and isinstance(out[0], np.ndarray) and out[1].shape == (3, 8, 8)


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (np.zeros((20, 30), np.int64), "dtype int64"),
        (np.zeros((20, 30), bool), "dtype bool"),
        (np.full((8, 8, 3), 2.0), "[0, 1]"),
        (torch.full((3, 8, 8), -1.0), "(x + 1) / 2"),
        (np.array([[np.nan]], np.float32), "NaN"),
        (np.zeros((3, 20, 30), np.uint8), "np.moveaxis"),
        (torch.zeros(8, 8), "(C, H, W)"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), "dtype torch.int32"),
        ("photo.jpg", "cannot deblur a str"),
        (Image.new("HSV", (4, 4)), "mode HSV"),
    ],
)
def test_what_it_cannot_read_is_refused_in_one_line(identity, image, says) -> None:
    with pytest.raises(ImageInputError) as caught:
        identity(image)
    message = str(caught.value)
    assert says in message and len(message.splitlines()) == 1
    assert isinstance(caught.value, UserError)


def test_from_pretrained_runs_the_packaged_model() -> None:
    from realblur_gan.data.demo import make_scene

    deblur = Deblurrer.from_pretrained(device="cpu")
    photo = np.asarray(make_scene(0, 64))[:40, :56]
    out = deblur(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    # A restorer: a sharpened picture of its input, not a new one.
    assert np.abs(out.astype(np.int16) - photo.astype(np.int16)).mean() < 0.05 * 255
    assert deblur.device == torch.device("cpu")


def test_from_pretrained_takes_a_checkpoint_path_and_names_bad_ones(tmp_path: Path) -> None:
    from realblur_gan.export import export_safetensors

    net = UNet(3, 3, width=4, depth=2).zero_residual_()
    config = {"_target_": "realblur_gan.nets.UNet", "width": 4, "depth": 2}
    weights, _ = export_safetensors(net, config, tmp_path, "dbgan_g")
    deblur = Deblurrer.from_pretrained(weights, device="cpu", tile=None)
    x = torch.rand(3, 16, 16)
    torch.testing.assert_close(deblur(x), x, atol=1e-5, rtol=0)
    with pytest.raises(UserError, match="no such file, and no pretrained model") as caught:
        Deblurrer.from_pretrained(tmp_path / "missing.ckpt")
    assert "realblur-dbgan" in str(caught.value)


def test_importing_the_package_does_not_import_torch() -> None:
    """`import realblur_gan` stays cheap: the API class loads on first use."""
    code = (
        "import sys, realblur_gan; assert 'torch' not in sys.modules; "
        "realblur_gan.Deblurrer; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
