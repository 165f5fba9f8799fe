"""The one renderer and the one rasteriser: what each step does, and float64 gradient checks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from realblur_gan.camera import (
    TONE_CURVES,
    CameraParams,
    CameraPipelineBlur,
    RealisticBlur,
    SimpleBlur,
    convolve,
    from_linear,
    rasterise,
    render,
    to_linear,
    trajectory_kernels,
)
from realblur_gan.nets import ShakeBlurNet

DTYPES = [torch.float32, torch.float64]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(dtype: torch.dtype, b: int = 2, c: int = 3, size: int = 8) -> torch.Tensor:
    """Values inside (0.1, 0.9): no clamp sits on a kink where a gradient check probes."""
    return (0.1 + 0.8 * torch.rand(b, c, size, size, generator=seeded(1))).to(dtype)


def kernels(dtype: torch.dtype, size: int, b: int = 2) -> torch.Tensor:
    return trajectory_kernels(b, size, 0.7, generator=seeded(2)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_steps_is_the_identity_and_dtype_is_kept(dtype: torch.dtype) -> None:
    x = images(dtype)
    out = render(x, CameraParams(tone_curve=None))
    assert out.dtype == dtype and torch.equal(out, x)
    # A tone curve alone is its own round trip.
    for curve in TONE_CURVES:
        again = render(x, CameraParams(tone_curve=curve))
        torch.testing.assert_close(again, x, atol=1e-5 if dtype == torch.float32 else 1e-10, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_steps_follow_the_camera_order(dtype: torch.dtype) -> None:
    """Blur in linear light, then exposure, then clipping, then the curve back."""
    x, k = images(dtype), kernels(dtype, 5)
    gain = torch.tensor([1.0, 1.5], dtype=dtype)
    out = render(x, CameraParams(kernels=k, tone_curve="gamma", exposure=gain))
    lin = convolve(x.pow(2.2), k) * gain.view(2, 1, 1, 1)
    torch.testing.assert_close(out, lin.clamp(0, 1).pow(1 / 2.2))
    # White balance undone and redone around a step-free sensor is a no-op.
    wb = torch.tensor([[2.0, 1.0, 1.5], [1.8, 1.0, 1.2]], dtype=dtype)
    plain = render(x, CameraParams(kernels=k))
    torch.testing.assert_close(render(x, CameraParams(kernels=k, white_balance=wb)), plain)


def test_noise_comes_from_the_generator_or_the_global_stream() -> None:
    x = images(torch.float32)
    noisy = CameraParams(shot=torch.full((2,), 1e-3), read=torch.full((2,), 2e-3))
    a, b = render(x, noisy, seeded(5)), render(x, noisy, seeded(5))
    assert torch.equal(a, b) and not torch.equal(a, render(x, noisy, seeded(6)))
    torch.manual_seed(3)
    c = render(x, noisy)
    torch.manual_seed(3)
    assert torch.equal(c, render(x, noisy))
    # Read noise alone: the shot noise counts as 0.
    read_only = dataclasses.replace(noisy, shot=None)
    zero_shot = dataclasses.replace(noisy, shot=torch.zeros(2))
    assert torch.equal(render(x, read_only, seeded(5)), render(x, zero_shot, seeded(5)))


@pytest.mark.parametrize(
    "sampler",
    [
        SimpleBlur(kernel_size=(3, 9)),
        RealisticBlur(kernel_size=(5, 9), exposure=(1.0, 1.5), jpeg_quality=(70, 90)),
        CameraPipelineBlur(kernel_size=(5, 9), jpeg_quality=(70, 90)),
    ],
    ids=["simple", "realistic", "camera"],
)
def test_every_synthetic_blur_is_draw_then_render(sampler: SimpleBlur) -> None:
    x = images(torch.float32, size=16)
    gen = seeded(7)
    params = sampler.draw(2, gen)
    expected = render(x, params, gen)
    assert torch.equal(sampler(x, seeded(7)), expected)


def test_params_refuse_unknown_switches() -> None:
    with pytest.raises(ValueError, match="tone_curve"):
        CameraParams(tone_curve="log")
    with pytest.raises(ValueError, match="bayer_pattern"):
        CameraParams(bayer_pattern="RGBX")
    with pytest.raises(ValueError, match="gamma"):
        CameraParams(gamma=0.0)
    with pytest.raises(ValueError, match="images"):
        render(torch.rand(3, 8, 8), CameraParams())


# Gradient checks, float64 -----------------------------------------------------------------------


@pytest.mark.parametrize("curve", [*TONE_CURVES, None])
@pytest.mark.parametrize("size", [3, 9], ids=["direct", "fft"])
def test_render_gradcheck_images_and_kernels(curve: str | None, size: int) -> None:
    x, k = images(torch.float64).requires_grad_(), kernels(torch.float64, size).requires_grad_()

    def blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return render(x, CameraParams(kernels=k, tone_curve=curve, floor=1e-6))

    assert gradcheck(blur, (x, k), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("mosaic", [None, "RGGB"])
def test_render_gradcheck_camera_parameters(mosaic: str | None) -> None:
    """Through saturation, exposure, white balance, mosaic and noise (a fixed noise draw)."""
    x = images(torch.float64, size=10)
    x[..., 2:4, 3:6] = 1.0  # clipped highlights: the saturation factor acts on them
    k = kernels(torch.float64, 3)
    saturation = torch.tensor([1.5, 2.0], dtype=torch.float64, requires_grad=True)
    exposure = torch.tensor([1.1, 0.9], dtype=torch.float64, requires_grad=True)
    wb = torch.tensor([[2.0, 1.0, 1.5], [1.8, 1.0, 1.2]], dtype=torch.float64, requires_grad=True)
    shot = torch.tensor([1e-3, 2e-3], dtype=torch.float64, requires_grad=True)
    read = torch.tensor([2e-3, 1e-3], dtype=torch.float64, requires_grad=True)

    def camera(*values: torch.Tensor) -> torch.Tensor:
        sat, gain, gains, s, r = values
        params = CameraParams(
            kernels=k,
            tone_curve="camera",
            saturation=sat,
            exposure=gain,
            white_balance=gains,
            bayer_pattern=mosaic,
            shot=s,
            read=r,
            floor=1e-6,
        )
        return render(x, params, seeded(11))

    assert gradcheck(camera, (saturation, exposure, wb, shot, read), eps=1e-7, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tone_curves_have_finite_gradients_with_a_floor(dtype: torch.dtype) -> None:
    """At black and white the curves' slopes are infinite; a floor keeps gradients finite."""
    y = torch.tensor([0.0, 0.5, 1.0], dtype=dtype, requires_grad=True)
    for curve in TONE_CURVES:
        for fn in (to_linear, from_linear):
            (grad,) = torch.autograd.grad(fn(y, curve, floor=1e-6).sum(), y)
            assert torch.isfinite(grad).all(), (curve, fn.__name__)


def test_rasteriser_gradcheck_in_the_path_points() -> None:
    # Off-integer positions (the bilinear weights have kinks at pixel centres), inside the grid.
    points = torch.tensor(
        [
            [[1.3, 2.6], [2.2, 2.9], [3.7, 3.4], [4.45, 1.15]],
            [[0.6, 0.3], [5.2, 4.8], [2.5, 3.1], [3.3, 3.3]],
        ],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert gradcheck(lambda p: rasterise(p, 7), (points,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rasteriser_keeps_mass_and_clamps_to_the_grid(dtype: torch.dtype) -> None:
    points = torch.tensor([[[-3.0, 1.0], [1.5, 9.0]]], dtype=dtype)
    k = rasterise(points, 5)
    assert k.dtype == dtype and k.shape == (1, 5, 5)
    torch.testing.assert_close(k.sum(), torch.tensor(1.0, dtype=dtype))
    assert k[0, 1, 0] == 0.5 and k[0, 4, 1] == 0.25 and k[0, 4, 2] == 0.25


def test_learnable_camera_gradcheck_in_its_statistics() -> None:
    """The whole learnable camera, path to pixels, in float64: statistics -> kernels -> image."""
    net = ShakeBlurNet(4, 3, kernel_size=9, steps=4, noise=False, init_step=1.5).double()
    x = torch.cat(
        [images(torch.float64), torch.randn(2, 1, 8, 8, generator=seeded(4), dtype=torch.float64)],
        dim=1,
    )
    raw = net.raw.detach().clone().requires_grad_()
    assert gradcheck(lambda r: functional_call(net, {"raw": r}, (x,)), (raw,), eps=1e-6, atol=1e-5)
