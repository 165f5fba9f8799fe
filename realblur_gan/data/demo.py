"""The embedded demo dataset: photo-like scenes generated on the fly, no download.

Three parts, each from its own seed stream so they never share a scene:

- ``sharp/``: scenes with the ingredients deblurring is judged on: smooth gradients, fractal
  textures, hard-edged shapes with stripes/checks, thin lines, text and small dots;
- ``real_blur/``: OTHER scenes degraded by the "real camera" process (camera-shake trajectory
  blur in linear light through a gamma CRF, exposure saturation, Poisson-Gaussian noise, JPEG),
  NOT paired with ``sharp/``;
- ``val/blur`` + ``val/sharp``: held-out scenes and their realistic blur, paired, for PSNR/SSIM.

The synthetic pairs BGAN is pre-trained on come from simple kernels applied on the fly
(``SimpleBlur``): a deliberately different process, so BGAN has a real gap to learn.
Generation is deterministic for a seed and cached under ``root`` (written to a temporary
folder and renamed, so an interrupted generation never leaves a half dataset behind). One
process generates at a time; another one that needs the same dataset meanwhile waits for it.
"""

from __future__ import annotations

import logging
import math
import shutil
import string
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from realblur_gan.camera import RealisticBlur
from realblur_gan.data.datamodule import BlurDataModule
from realblur_gan.errors import DataError
from realblur_gan.ownership import claim_cache
from realblur_gan.progress import progress_bar

log = logging.getLogger(__name__)

VERSION = 2
_SUPERSAMPLE = 2  # draw at 2x and downsample: anti-aliased edges like a real lens/sensor


def realistic_camera_blur() -> RealisticBlur:
    """The demo's "real camera": shake + CRF + saturation + noise + JPEG (sized for 128 px)."""
    return RealisticBlur(
        kernel_size=(5, 11),
        intensity=(0.1, 0.7),
        gamma=2.2,
        exposure=(1.0, 1.1),
        noise_shot=(1e-4, 5e-4),
        noise_read=(1e-3, 3e-3),
        jpeg_quality=(80, 95),
    )


def _fractal_noise(rng: np.random.Generator, size: int, octaves: int = 4) -> np.ndarray:
    """Sum of upsampled random grids (1/f-like texture), in [0, 1], shape (size, size)."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        img = Image.fromarray((grid * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        out += amp * np.asarray(img, np.float32) / 255.0
        total += amp
        amp *= 0.5
    return out / total


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _pattern(rng: np.random.Generator, size: int) -> Image.Image:
    """A full-size RGB fill: flat colour, stripes at an angle, checks, or a coloured texture."""
    kind = rng.integers(0, 4)
    a, b = np.array(_color(rng), np.float32), np.array(_color(rng), np.float32)
    if kind == 0:
        return Image.new("RGB", (size, size), tuple(int(x) for x in a))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 1:
        theta, period = rng.uniform(0, math.pi), rng.uniform(6, 24) * _SUPERSAMPLE
        t = np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period) > 0
    elif kind == 2:
        cell = rng.uniform(8, 24) * _SUPERSAMPLE
        t = ((xx // cell + yy // cell) % 2).astype(bool)
    else:
        t = _fractal_noise(rng, size)[..., None]
        return Image.fromarray((a * t + b * (1 - t)).clip(0, 255).astype(np.uint8))
    t = t[..., None].astype(np.float32)
    return Image.fromarray((a * t + b * (1 - t)).astype(np.uint8))


def make_scene(seed: int, size: int = 128) -> Image.Image:
    """One photo-like RGB scene, deterministic for ``seed``.

    Args:
        seed: Scene seed.
        size: Output side in pixels.

    Returns:
        An RGB ``PIL.Image`` of ``size x size``.
    """
    rng = np.random.default_rng(seed)
    big = size * _SUPERSAMPLE
    # Background: a colour gradient modulated by a soft fractal texture.
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) / big
    theta = rng.uniform(0, 2 * math.pi)
    ramp = (xx * math.cos(theta) + yy * math.sin(theta) + 1.5) / 3.0
    c0, c1 = np.array(_color(rng), np.float32), np.array(_color(rng), np.float32)
    bg = c0 * ramp[..., None] + c1 * (1 - ramp[..., None])
    bg *= (0.75 + 0.5 * _fractal_noise(rng, big))[..., None]
    canvas = Image.fromarray(bg.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)

    for _ in range(int(rng.integers(3, 8))):  # shapes with flat, striped or textured fills
        mask = Image.new("L", (big, big), 0)
        mdraw = ImageDraw.Draw(mask)
        cx, cy = rng.uniform(0, big, 2)
        r = rng.uniform(0.08, 0.35) * big
        kind = rng.integers(0, 3)
        if kind == 0:
            mdraw.ellipse([cx - r, cy - r * rng.uniform(0.4, 1), cx + r, cy + r], fill=255)
        elif kind == 1:
            mdraw.rectangle([cx - r, cy - r * rng.uniform(0.3, 1), cx + r, cy + r], fill=255)
        else:
            n = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * math.pi, n))
            radii = r * rng.uniform(0.5, 1.0, n)
            pts = [
                (cx + q * math.cos(t), cy + q * math.sin(t))
                for t, q in zip(angles, radii, strict=True)
            ]
            mdraw.polygon(pts, fill=255)
        canvas.paste(_pattern(rng, big), (0, 0), mask)

    for _ in range(int(rng.integers(2, 7))):  # thin structures: wires, edges, branches
        pts = [tuple(rng.uniform(0, big, 2)) for _ in range(int(rng.integers(2, 4)))]
        draw.line(pts, fill=_color(rng), width=int(rng.integers(1, 3)) * _SUPERSAMPLE // 2 + 1)

    font_size = int(rng.integers(9, 16)) * _SUPERSAMPLE
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        font = ImageFont.load_default()
    for _ in range(int(rng.integers(1, 3))):  # text: the classic deblurring sanity check
        letters = string.ascii_letters + string.digits
        word = "".join(rng.choice(list(letters), int(rng.integers(3, 8))))
        xy = (float(rng.uniform(0, big * 0.6)), float(rng.uniform(0, big * 0.85)))
        draw.text(xy, word, fill=_color(rng), font=font)

    for _ in range(int(rng.integers(5, 20))):  # small dots: point-like highlights
        x, y = rng.uniform(0, big, 2)
        r = rng.uniform(1, 3) * _SUPERSAMPLE / 2
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_color(rng))

    return canvas.resize((size, size), Image.LANCZOS)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)


def _save(x: torch.Tensor, path: Path) -> None:
    arr = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def demo_folder(
    root: str | Path, seed: int, n_sharp: int, n_real: int, n_val: int, image_size: int
) -> Path:
    """The versioned cache folder of one demo dataset specification."""
    return Path(root) / f"v{VERSION}-seed{seed}-{n_sharp}-{n_real}-{n_val}-{image_size}px"


def ensure_demo(
    root: str | Path,
    seed: int = 0,
    n_sharp: int = 256,
    n_real: int = 256,
    n_val: int = 24,
    image_size: int = 128,
) -> Path:
    """Generate the demo dataset under ``root`` unless an identical one is cached there.

    Returns:
        The dataset folder (``sharp/``, ``real_blur/``, ``val/blur``, ``val/sharp``).
    """
    final = demo_folder(root, seed, n_sharp, n_real, n_val, image_size)
    if (final / "DONE").exists():
        return final
    # One process generates; another that starts meanwhile waits for it and reuses the result.
    with claim_cache(final, "paths.data_dir (or REALBLUR_GAN_DATA)"):
        if (final / "DONE").exists():
            return final
        log.info("generating the demo dataset in %s (first use only)", final)
        try:
            _generate(final, seed, n_sharp, n_real, n_val, image_size)
        except OSError as err:
            shutil.rmtree(final.with_name(final.name + ".partial"), ignore_errors=True)
            raise DataError(
                f"{final}: cannot write the demo dataset ({err.strerror or err}); free disk "
                "space or set paths.data_dir (or REALBLUR_GAN_DATA) to another folder"
            ) from None
    return final


def _generate(
    final: Path, seed: int, n_sharp: int, n_real: int, n_val: int, image_size: int
) -> None:
    """Write the dataset under a temporary name and rename it to ``final`` when complete."""
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("sharp", "real_blur", "val/blur", "val/sharp"):
        (tmp / sub).mkdir(parents=True)
    # Disjoint seed streams: scene ids never collide between the three parts.
    base = seed * 1_000_003
    # About half a minute on a loaded 2-core CPU: long enough to want a bar.
    with progress_bar(total=n_sharp + n_real + n_val, desc="demo data", unit="img") as bar:
        for i in range(n_sharp):
            make_scene(base + i, image_size).save(tmp / "sharp" / f"{i:05d}.png")
            bar.update(1)

        camera = realistic_camera_blur()
        gen = torch.Generator().manual_seed(seed + 7)
        for start, n, out in ((300_000, n_real, "real_blur"), (600_000, n_val, "val")):
            for i in range(n):
                sharp = _to_tensor(make_scene(base + start + i, image_size))
                blurred = camera(sharp, generator=gen)
                if out == "val":
                    _save(sharp, tmp / "val" / "sharp" / f"{i:05d}.png")
                    _save(blurred, tmp / "val" / "blur" / f"{i:05d}.png")
                else:
                    _save(blurred, tmp / out / f"{i:05d}.png")
                bar.update(1)
    (tmp / "DONE").write_text(f"realblur-gan demo dataset v{VERSION}\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


class DemoDataModule(BlurDataModule):
    """``BlurDataModule`` over the generated demo dataset (made in ``prepare_data``).

    Args:
        root: Cache folder; the dataset lives in a versioned sub-folder.
        seed: Dataset seed.
        n_sharp, n_real, n_val: Sizes of the three parts.
        image_size: Side of the generated images.
        **kwargs: Passed to ``BlurDataModule`` (crop size, batch size, synthetic blur, ...).
    """

    def __init__(
        self,
        root: str | Path,
        seed: int = 0,
        n_sharp: int = 256,
        n_real: int = 256,
        n_val: int = 24,
        image_size: int = 128,
        **kwargs,
    ) -> None:
        self.spec = {
            "root": root,
            "seed": seed,
            "n_sharp": n_sharp,
            "n_real": n_real,
            "n_val": n_val,
            "image_size": image_size,
        }
        folder = demo_folder(root, seed, n_sharp, n_real, n_val, image_size)
        kwargs.setdefault("val_crop_size", None)
        super().__init__(
            sharp_dir=folder / "sharp",
            real_blur_dir=folder / "real_blur",
            val_dir=folder / "val",
            seed=seed,
            **kwargs,
        )

    def prepare_data(self) -> None:
        ensure_demo(**self.spec)

    def setup(self, stage: str | None = None) -> None:
        ensure_demo(**self.spec)  # cheap when cached; covers callers that skip prepare_data
        super().setup(stage)
