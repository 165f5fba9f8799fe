"""Blur that changes across the image: the camera's roll, a lattice of kernels, their blend."""

from __future__ import annotations

import pytest
import torch

from realblur_gan.camera import (
    CameraParams,
    CameraPipelineBlur,
    RealisticBlur,
    convolve,
    convolve_varying,
    render,
)
from realblur_gan.camera.kernels import shake_kernels, varying_shake_kernels


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_kernels(*shape: int, seed: int = 0) -> torch.Tensor:
    k = torch.rand(*shape, generator=seeded(seed))
    return k / k.sum(dim=(-2, -1), keepdim=True)


def centroid(kernels: torch.Tensor) -> torch.Tensor:
    """(..., k, k) -> (..., 2) centre of mass (x, y) in kernel pixels."""
    k = kernels.shape[-1]
    idx = torch.arange(k, dtype=kernels.dtype)
    return torch.stack([(kernels.sum(-2) * idx).sum(-1), (kernels.sum(-1) * idx).sum(-1)], -1)


# --------------------------------------------------------------------------------------------------
# The lattice of kernels
# --------------------------------------------------------------------------------------------------


def test_lattice_kernels_are_valid_and_fit_their_size() -> None:
    kernels = varying_shake_kernels(6, (41, 41), (0.0, 1.0), (0.2, 0.6), grid=3, generator=seeded())
    assert kernels.shape == (6, 3, 3, 41, 41)
    assert kernels.min() >= 0
    torch.testing.assert_close(kernels.sum(dim=(-2, -1)), torch.ones(6, 3, 3))


def test_lattice_kernels_are_centred_where_they_have_room() -> None:
    # The blur moves no part of the image: each anchor's path sits on the kernel centre (paths
    # that fill their kernel can only be shifted as far as the border allows).
    kernels = varying_shake_kernels(6, (41, 41), (0.0, 0.5), (0.0, 0.3), grid=3, generator=seeded())
    torch.testing.assert_close(centroid(kernels), torch.full((6, 3, 3, 2), 20.0), atol=0.5, rtol=0)


def test_without_roll_every_anchor_has_the_shake_kernel() -> None:
    shake = shake_kernels(4, (9, 33), (0.0, 1.0), seeded(7))
    lattice = varying_shake_kernels(4, (9, 33), (0.0, 1.0), (0.0, 0.0), generator=seeded(7))
    torch.testing.assert_close(lattice, shake[:, None, None].expand_as(lattice), atol=1e-6, rtol=0)


def test_roll_makes_the_corners_blur_differently() -> None:
    still = varying_shake_kernels(8, (31, 31), (0.3, 0.3), (0.0, 0.0), generator=seeded(1))
    rolled = varying_shake_kernels(8, (31, 31), (0.3, 0.3), (0.5, 0.5), generator=seeded(1))
    corners = (rolled[:, 0, 0] - rolled[:, 1, 1]).abs().sum(dim=(-2, -1))
    assert (still[:, 0, 0] - still[:, 1, 1]).abs().sum() < 1e-4
    # L1 distance between two kernels is 2 when they do not overlap at all.
    assert corners.min() > 0.3, corners


def test_lattice_draws_are_seeded() -> None:
    a = varying_shake_kernels(3, (9, 21), (0.0, 1.0), (0.0, 0.5), generator=seeded(2))
    b = varying_shake_kernels(3, (9, 21), (0.0, 1.0), (0.0, 0.5), generator=seeded(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("rotation", "grid"), [((-0.1, 0.2), 2), ((0.0, 0.2), 0), ((0.0, 0.2), 1.5)]
)
def test_lattice_rejects_bad_settings(rotation: tuple[float, float], grid: int) -> None:
    with pytest.raises(ValueError, match=r"rotation|grid"):
        varying_shake_kernels(1, (9, 9), (0.0, 1.0), rotation, grid)


# --------------------------------------------------------------------------------------------------
# The blend
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fft", [True, False])
def test_one_kernel_at_every_anchor_is_plain_convolution(fft: bool) -> None:
    images = torch.rand(2, 3, 40, 56, generator=seeded())
    kernels = random_kernels(2, 9, 9)
    lattice = kernels[:, None, None].expand(2, 3, 3, 9, 9).contiguous()
    torch.testing.assert_close(
        convolve_varying(images, lattice, fft=fft), convolve(images, kernels, fft=fft)
    )


@pytest.mark.parametrize("k", [7, 15])  # the direct and the FFT path
def test_each_corner_gets_its_own_anchor_kernel(k: int) -> None:
    images = torch.rand(1, 3, 33, 47, generator=seeded())
    lattice = random_kernels(1, 2, 2, k, k, seed=3)
    out = convolve_varying(images, lattice)
    for i, y in ((0, 0), (1, -1)):
        for j, x in ((0, 0), (1, -1)):
            alone = convolve(images, lattice[:, i, j])
            torch.testing.assert_close(out[..., y, x], alone[..., y, x])


def test_midway_between_anchors_the_blurs_are_averaged() -> None:
    images = torch.rand(1, 1, 21, 21, generator=seeded())
    lattice = random_kernels(1, 3, 3, 5, 5, seed=4)
    out = convolve_varying(images, lattice)
    # Pixel (5, 15): halfway between anchor rows 0 and 1, halfway between anchor columns 1 and 2.
    blurs = [convolve(images, lattice[:, i, j])[0, 0, 5, 15] for i in (0, 1) for j in (1, 2)]
    torch.testing.assert_close(out[0, 0, 5, 15], torch.stack(blurs).mean())


def test_blend_keeps_brightness_and_passes_gradients() -> None:
    images = torch.full((1, 3, 24, 24), 0.4, requires_grad=True)
    lattice = random_kernels(1, 2, 2, 5, 5).requires_grad_()
    out = convolve_varying(images, lattice)
    torch.testing.assert_close(out, torch.full_like(out, 0.4))
    (out * torch.rand_like(out)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert lattice.grad is not None and torch.isfinite(lattice.grad).all()


def test_blend_rejects_a_malformed_lattice() -> None:
    with pytest.raises(ValueError, match=r"\(B, G, G, k, k\)"):
        convolve_varying(torch.rand(2, 3, 16, 16), torch.rand(2, 2, 3, 5, 5))


# --------------------------------------------------------------------------------------------------
# Through the camera
# --------------------------------------------------------------------------------------------------


def test_render_takes_a_lattice() -> None:
    images = torch.rand(2, 3, 32, 32, generator=seeded())
    lattice = random_kernels(2, 2, 2, 5, 5)
    out = render(images, CameraParams(kernels=lattice, tone_curve=None))
    torch.testing.assert_close(out, convolve_varying(images, lattice).clamp(0, 1))


@pytest.mark.parametrize("blur_class", [CameraPipelineBlur, RealisticBlur])
def test_rolling_camera_blurs_and_keeps_the_shake(blur_class: type) -> None:
    images = torch.rand(3, 3, 64, 64, generator=seeded())
    still = blur_class(kernel_size=(9, 21), jpeg_quality=None, rotation=(0.0, 0.0))
    plain = blur_class(kernel_size=(9, 21), jpeg_quality=None)
    rolled = blur_class(kernel_size=(9, 21), jpeg_quality=None, rotation=(0.5, 0.5))
    # No roll: the same shake as without the option, at every anchor.
    lattice = still.draw(3, seeded(5)).kernels
    shake = plain.draw(3, seeded(5)).kernels
    torch.testing.assert_close(lattice, shake[:, None, None].expand_as(lattice), atol=1e-6, rtol=0)
    blurred, kernels = rolled.sample(images, seeded(5))
    assert blurred.shape == images.shape and blurred.min() >= 0 and blurred.max() <= 1
    # sample() reports one kernel per image: the lattice's average.
    assert kernels.shape == (3, 21, 21)
    torch.testing.assert_close(kernels.sum(dim=(-2, -1)), torch.ones(3))
    assert (blurred - plain(images, seeded(5))).abs().mean() > 1e-3


def test_rolling_camera_rejects_a_one_anchor_lattice() -> None:
    with pytest.raises(ValueError, match="kernel_grid"):
        CameraPipelineBlur(rotation=(0.0, 0.3), kernel_grid=1)
