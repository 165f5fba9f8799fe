"""Image reading and writing across modes and bit depths, and clear errors for bad files."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from PIL import Image

from realblur_gan.data.io import (
    ImageFolderError,
    ImageInfo,
    ImageReadError,
    list_images,
    read_image,
    to_channels,
    write_image,
)

SAMPLE_TIFF = SHARED_DATA / "natural" / "McMaster18" / "1.tif"


def levels(shape: tuple[int, ...], bits: int, seed: int = 0) -> torch.Tensor:
    """Random values that are exactly representable at ``bits`` bits."""
    top = (1 << bits) - 1
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, top + 1, shape, generator=gen).float() / top


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_gray_round_trip(tmp_path: Path, suffix: str) -> None:
    x = levels((1, 7, 9), 16)
    path = write_image(tmp_path / f"g{suffix}", x, bit_depth=16)
    y, info = read_image(path)
    assert y.dtype == torch.float32 and y.shape == (1, 7, 9)
    assert torch.equal(y, x)
    assert (info.mode, info.bit_depth, info.channels, info.size) == ("L", 16, 1, (7, 9))
    # Writing back with the info keeps gray 16-bit even when the result came out RGB.
    out = write_image(tmp_path / f"back{suffix}", to_channels(y, 3), info)
    z, info2 = read_image(out)
    assert (info2.mode, info2.bit_depth) == ("L", 16)
    torch.testing.assert_close(z, x, atol=2e-5, rtol=0)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_round_trip(tmp_path: Path, suffix: str) -> None:
    x = levels((3, 5, 6), 16)
    y, info = read_image(write_image(tmp_path / f"c{suffix}", x, bit_depth=16))
    assert torch.equal(y, x) and (info.mode, info.bit_depth, info.channels) == ("RGB", 16, 3)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_8bit_rgb_round_trip(tmp_path: Path, suffix: str) -> None:
    x = levels((3, 6, 5), 8)
    path = write_image(tmp_path / f"c{suffix}", x)
    if suffix == ".webp":  # WebP written through Pillow is lossy by default
        assert read_image(path)[0].shape == (3, 6, 5)
        return
    y, info = read_image(path)
    assert torch.equal(y, x) and (info.mode, info.bit_depth) == ("RGB", 8)


def test_jpeg_read(tmp_path: Path) -> None:
    x = torch.full((3, 16, 16), 0.5)
    y, info = read_image(write_image(tmp_path / "a.jpg", x))
    assert info.format == "JPEG" and (y - x).abs().max() < 0.02


def test_rgba_alpha_passes_through(tmp_path: Path) -> None:
    rgba = levels((4, 6, 5), 8)
    y, info = read_image(write_image(tmp_path / "a.png", rgba))
    assert y.shape == (3, 6, 5) and info.mode == "RGBA"
    assert info.alpha is not None and torch.equal(info.alpha, rgba[3:])
    restored = 1.0 - y  # a "result" with no alpha: the source alpha is re-attached
    z, info2 = read_image(write_image(tmp_path / "out.png", restored, info))
    assert info2.mode == "RGBA" and torch.equal(info2.alpha, rgba[3:])
    torch.testing.assert_close(z, restored, atol=1 / 255, rtol=0)


def test_alpha_dropped_for_jpeg_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    info = ImageInfo("RGBA", 8, 3, torch.ones(1, 4, 4), (4, 4))
    with caplog.at_level(logging.WARNING):
        _, out_info = read_image(write_image(tmp_path / "a.jpg", torch.rand(3, 4, 4), info))
    assert out_info.alpha is None and "alpha" in caplog.text


def test_16bit_info_to_jpeg_falls_back_to_8bit(tmp_path: Path) -> None:
    info = ImageInfo("L", 16, 1, None, (4, 4))
    _, out_info = read_image(write_image(tmp_path / "a.jpg", torch.rand(1, 4, 4), info))
    assert out_info.bit_depth == 8
    with pytest.raises(ValueError, match="16 bits"):
        write_image(tmp_path / "b.jpg", torch.rand(1, 4, 4), bit_depth=16)


def test_palette_becomes_rgb(tmp_path: Path) -> None:
    img = Image.new("P", (4, 3))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.save(tmp_path / "p.png")
    y, info = read_image(tmp_path / "p.png")
    assert y.shape == (3, 3, 4) and info.mode == "P" and info.alpha is None
    assert y[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and y[:, 1, 1].tolist() == [0.0, 0.0, 1.0]
    img.info["transparency"] = 1
    img.save(tmp_path / "pt.png", transparency=1)
    _, info = read_image(tmp_path / "pt.png")
    assert info.alpha is not None and info.alpha[0, 1, 1] == 0.0


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    y, info = read_image(tmp_path / "c.jpg")
    assert y.shape == (3, 8, 8) and info.mode == "CMYK" and info.channels == 3
    assert y[0].mean() > 0.9 and y[1:].mean() < 0.1  # no cyan, full magenta+yellow: red


def test_other_pil_modes(tmp_path: Path) -> None:
    Image.new("LA", (5, 4), (100, 50)).save(tmp_path / "la.png")
    y, info = read_image(tmp_path / "la.png")
    assert y.shape == (1, 4, 5) and info.mode == "LA" and info.alpha is not None
    Image.new("1", (5, 4), 1).save(tmp_path / "bw.bmp")
    y, info = read_image(tmp_path / "bw.bmp")
    assert (info.mode, info.bit_depth) == ("1", 1) and y.min() == 1.0
    gray16 = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    y, info = read_image(tmp_path / "g16.png", channels=3)
    assert y.shape == (3, 4, 5) and info.bit_depth == 16 and info.channels == 1
    assert y[0, 3, 4].item() == pytest.approx(19 * 3000 / 65535)


def test_to_channels() -> None:
    rgb = torch.rand(2, 3, 4, 4)
    gray = to_channels(rgb, 1)
    assert gray.shape == (2, 1, 4, 4)
    torch.testing.assert_close(
        gray[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    )
    assert to_channels(gray[0], 3).shape == (3, 4, 4)
    assert to_channels(torch.rand(4, 2, 2), 3).shape == (3, 2, 2)
    assert to_channels(rgb, 3) is rgb


def _bad_files(folder: Path) -> dict[str, Path]:
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 99, 199)).save(png, "PNG")
    jpg = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(jpg, "JPEG")
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "zero-byte": (folder / "empty.png", b""),
        "non-image": (folder / "notes.png", b"just some text, not pixels\n"),
        "truncated png": (folder / "cut.png", png.getvalue()[:70]),
        "truncated jpeg": (folder / "cut.jpg", jpg.getvalue()[:400]),
        "corrupt tiff": (folder / "bad.tif", b"II*\x00" + b"\xff" * 40),
        "corrupt 16-bit png": (folder / "bad16.png", b"\x89PNG\r\n\x1a\n" + bytes(17) + b"\x10"),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    folder = tmp_path / "données ünïcode 画像"
    cases = _bad_files(folder)
    cases["missing"] = folder / "nope.png"
    cases["folder"] = folder
    for case, path in cases.items():
        with pytest.raises(ImageReadError) as caught:
            read_image(path)
        message = str(caught.value)
        assert str(path) in message, case
        assert "\n" not in message and "; " in message, case  # problem; fix
        err = caught.value
        assert err.__context__ is None or err.__suppress_context__, case  # no chained traceback


def test_list_images(tmp_path: Path) -> None:
    root = tmp_path / "imgs ✓"
    for rel in (
        "b.png",
        "a/z.JPG",
        "a/c.tiff",
        "日本/x.webp",
        ".hidden/h.png",
        "skip.txt",
        ".d.png",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    found = [p.relative_to(root).as_posix() for p in list_images(root)]
    assert found == ["a/c.tiff", "a/z.JPG", "b.png", "日本/x.webp"]
    assert [p.name for p in list_images(root, recursive=False)] == ["b.png"]


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_list_images_errors(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "ünï"
    if kind == "empty":
        target.mkdir()
        (target / "readme.txt").write_text("no images")
    elif kind == "file":
        target.write_text("x")
    with pytest.raises(ImageFolderError) as caught:
        list_images(target)
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)


def test_write_is_atomic_and_checks_input(tmp_path: Path) -> None:
    write_image(tmp_path / "deep" / "a.png", torch.rand(3, 4, 4))
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["a.png"]
    with pytest.raises(ValueError, match="extension"):
        write_image(tmp_path / "a.xyz", torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="C, H, W"):
        write_image(tmp_path / "a.png", torch.rand(5, 4, 4))


@pytest.mark.skipif(not SAMPLE_TIFF.exists(), reason="sample data not present")
def test_sample_packbits_tiff() -> None:
    y, info = read_image(SAMPLE_TIFF)
    assert y.shape == (3, 500, 500) and info.format == "TIFF" and info.bit_depth == 8
