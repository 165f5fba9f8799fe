"""Blur made by averaging video frames: separate short strokes along the shake, not one smear."""

from __future__ import annotations

import pytest
import torch

from realblur_gan.camera import CameraPipelineBlur, RealisticBlur
from realblur_gan.camera.kernels import (
    FrameExposures,
    frame_exposures,
    rasterise,
    shake_kernels,
    varying_shake_kernels,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def straight_path(length: float, size: int, vertices: int = 96) -> torch.Tensor:
    """(1, vertices, 2): a constant-speed horizontal move through the kernel's middle row."""
    x = torch.linspace(0.0, length, vertices) + (size - 1 - length) / 2
    return torch.stack([x, torch.full_like(x, (size - 1) / 2)], dim=-1)[None]


def frame_kernel(path: torch.Tensor, size: int, frames: int, shutter: float) -> torch.Tensor:
    points, light = frame_exposures(path, torch.tensor([frames]), torch.tensor([shutter]))
    return rasterise(points, size, light)[0]


def off_centre(kernels: torch.Tensor) -> torch.Tensor:
    """(N, k, k) -> (N,) largest distance of the centre of mass from the middle, along x or y."""
    k = kernels.shape[-1]
    idx = torch.arange(k, dtype=kernels.dtype)
    mass = torch.stack([(kernels.sum(-2) * idx).sum(-1), (kernels.sum(-1) * idx).sum(-1)], -1)
    return (mass - (k - 1) / 2).abs().amax(dim=-1)


def runs_of_light(profile: torch.Tensor) -> list[float]:
    """The light of each run of consecutive lit pixels of a 1-D profile, left to right."""
    runs: list[float] = []
    inside = False
    for value in profile.tolist():
        if value > 1e-6:
            if not inside:
                runs.append(0.0)
            runs[-1] += value
            inside = True
        else:
            inside = False
    return runs


def test_a_fast_move_with_a_short_shutter_leaves_one_stroke_per_frame() -> None:
    # 7 frames, each open a tenth of the frame interval, over a 60 px move: 7 separate ghosts of
    # equal light, about 60 / 6.1 = 9.8 px apart.
    kernel = frame_kernel(straight_path(60.0, 65), 65, frames=7, shutter=0.1)
    row = kernel.sum(dim=0)
    runs = runs_of_light(row)
    assert len(runs) == 7
    assert runs == pytest.approx([1 / 7] * 7, abs=1e-5)
    lit = (row > 1e-6).nonzero().flatten().float()
    assert float(lit.max() - lit.min()) == pytest.approx(60.0, abs=1.0)


def test_a_full_shutter_is_the_continuous_exposure() -> None:
    path = straight_path(40.0, 45)
    continuous = rasterise(
        torch.stack([torch.linspace(2.0, 42.0, 2001), torch.full((2001,), 22.0)], -1)[None], 45
    )[0]
    averaged = frame_kernel(path, 45, frames=9, shutter=1.0)
    assert float((averaged - continuous).abs().sum()) < 0.02


@pytest.mark.parametrize("frames, shutter", [(1, 0.3), (7, 0.1), (13, 0.5), (10, 1.0)])
def test_frame_kernels_are_valid(frames: int, shutter: float) -> None:
    paths = torch.cumsum(torch.randn(5, 96, 2, generator=seeded(frames)), dim=1)
    paths = paths - paths.amin(dim=1, keepdim=True) + 1.0
    points, light = frame_exposures(paths, torch.full((5,), frames), torch.full((5,), shutter))
    assert points.shape == (5, 2048, 2) and light.shape == (5, 2048)
    assert torch.allclose(light.sum(dim=1), torch.ones(5))
    size = int(paths.max()) + 3
    kernels = rasterise(points, size, light)
    assert torch.isfinite(kernels).all() and (kernels >= 0).all()
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(5))


def test_shake_kernels_as_frame_averages_stay_centred_and_the_rest_are_untouched() -> None:
    plain = shake_kernels(64, (21, 65), (0.0, 1.0), seeded(4), "log")
    none = shake_kernels(64, (21, 65), (0.0, 1.0), seeded(4), "log", FrameExposures(share=0.0))
    mixed = shake_kernels(64, (21, 65), (0.0, 1.0), seeded(4), "log", FrameExposures(share=0.5))
    assert torch.equal(none, plain)
    changed = (mixed - plain).abs().sum(dim=(1, 2)) > 1e-4
    assert 16 <= int(changed.sum()) <= 48  # about half of them
    assert torch.allclose(mixed.sum(dim=(1, 2)), torch.ones(64))
    # Centred on their light wherever the kernel has room: never farther off than the
    # continuous stroke (which may already fill its grid and sit off-centre).
    off_framed = off_centre(mixed[changed])
    off_plain = off_centre(plain[changed])
    assert (off_framed <= off_plain + 0.5).all()
    assert float(off_framed.median()) < 0.01


def test_every_anchor_of_a_rolling_image_shares_its_frames() -> None:
    lattice = varying_shake_kernels(
        12, (21, 41), (0.3, 1.0), (0.2, 0.5), 2, seeded(5), "uniform", FrameExposures(share=0.5)
    )
    plain = varying_shake_kernels(12, (21, 41), (0.3, 1.0), (0.2, 0.5), 2, seeded(5), "uniform")
    changed = ((lattice - plain).abs().sum(dim=(-2, -1)) > 1e-4).flatten(1)  # (images, anchors)
    assert changed.any() and not changed.all()
    assert torch.equal(changed.all(dim=1), changed.any(dim=1))
    assert torch.allclose(lattice.sum(dim=(-2, -1)), torch.ones(12, 2, 2))


@pytest.mark.parametrize("sampler", [CameraPipelineBlur, RealisticBlur])
def test_samplers_draw_frame_averages_last(sampler: type) -> None:
    images = torch.rand(6, 3, 40, 40, generator=seeded(1))
    kwargs = {"kernel_size": (15, 31), "jpeg_quality": None}
    _, plain = sampler(**kwargs).sample(images, seeded(2))
    out, framed = sampler(frames=[7, 13], shutter=[0.1, 0.3], **kwargs).sample(images, seeded(2))
    assert out.shape == images.shape and framed.shape == plain.shape
    assert not torch.allclose(framed, plain)
    # The same shake drawn as frames: the same light, spread over fewer pixels.
    assert torch.allclose(framed.sum(dim=(1, 2)), torch.ones(6))
    assert ((framed > 1e-6).sum(dim=(1, 2)) <= (plain > 1e-6).sum(dim=(1, 2))).all()


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"frames": [0, 5]}, "frames"),
        ({"frames": [7.5, 9]}, "frames"),
        ({"frames": [7, 13], "shutter": [0.0, 0.5]}, "shutter"),
        ({"frames": [7, 13], "shutter": [0.5, 1.5]}, "shutter"),
        ({"frames": [7, 13], "frames_share": 1.5}, "frames_share"),
    ],
)
def test_bad_frame_settings_name_themselves(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        CameraPipelineBlur(**kwargs)


def lit_extent(kernels: torch.Tensor) -> torch.Tensor:
    """(N, k, k) -> (N,) the larger side of each kernel's lit bounding box, in pixels."""
    lit = kernels > 1e-6
    cols = lit.any(dim=1).float()
    rows = lit.any(dim=2).float()
    idx = torch.arange(kernels.shape[-1], dtype=torch.float32)
    width = (cols * idx).amax(1) - torch.where(cols > 0, idx, 1e9).amin(1)
    height = (rows * idx).amax(1) - torch.where(rows > 0, idx, 1e9).amin(1)
    return torch.maximum(width, height)


def test_span_makes_long_straight_strokes_that_intensity_alone_never_draws() -> None:
    # A steady fast move: a straight stroke across most of the kernel. Tied to the intensity, a
    # straight path (intensity 0) spans at most 45 % of it.
    tied = shake_kernels(32, (61, 61), (0.0, 0.0), seeded(6))
    long = shake_kernels(32, (61, 61), (0.0, 0.0), seeded(6), span=(0.8, 1.0))
    assert float(lit_extent(tied).max()) <= 0.45 * 60 + 2
    assert float(lit_extent(long).min()) >= 0.8 * 60 - 1
    assert torch.allclose(long.sum(dim=(1, 2)), torch.ones(32))
    # The span scales the same path: the same direction, only longer.
    assert torch.allclose(centroid_free_direction(tied), centroid_free_direction(long), atol=0.05)


def centroid_free_direction(kernels: torch.Tensor) -> torch.Tensor:
    """(N, k, k) -> (N,) |cos| of the angle of each kernel's principal axis."""
    k = kernels.shape[-1]
    idx = torch.arange(k, dtype=kernels.dtype)
    y, x = torch.meshgrid(idx, idx, indexing="ij")
    mx = (kernels * x).sum((1, 2), keepdim=True)
    my = (kernels * y).sum((1, 2), keepdim=True)
    cxx = (kernels * (x - mx) ** 2).sum((1, 2))
    cyy = (kernels * (y - my) ** 2).sum((1, 2))
    cxy = (kernels * (x - mx) * (y - my)).sum((1, 2))
    angle = 0.5 * torch.atan2(2 * cxy, cxx - cyy)
    return angle.cos().abs()


@pytest.mark.parametrize("span", [[0.0, 0.5], [0.5, 1.2], [0.9, 0.5]])
def test_a_bad_span_names_itself(span: list[float]) -> None:
    with pytest.raises(ValueError, match="span"):
        CameraPipelineBlur(span=span)
