"""Pinned outputs of every blur for fixed seeds: a refactor of the camera must not change them.

``tests/data/camera_pins.npz`` holds what each recipe below returned when the file was written
(the commit that added this test, before the camera was rebuilt as one package). Each recipe
also records a few numbers drawn from its generator *after* the blur (``.../after``), so a change
in how many random numbers a blur consumes shows up even when its output does not: a training
run resumed on new code must see the same random stream.

Regenerate only on purpose, when a blur is meant to change::

    REALBLUR_PIN_WRITE=1 .venv/bin/python -m pytest tests/test_camera_pins.py
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from realblur_gan.camera import (
    BAYER_PATTERNS,
    CameraPipelineBlur,
    RealisticBlur,
    SimpleBlur,
    add_poisson_gaussian_noise,
    convolve,
    demosaic_bilinear,
    disk_kernel,
    from_linear,
    gaussian_kernel,
    gopro_blur,
    jpeg_compress,
    linear_motion_kernel,
    mosaic,
    to_linear,
    trajectory_kernels,
    valid_convolve,
)
from realblur_gan.nets import NoiseInjection, ShakeBlurNet

PINS = Path(__file__).parent / "data" / "camera_pins.npz"
WRITE = os.environ.get("REALBLUR_PIN_WRITE") == "1"

Pins = dict[str, torch.Tensor]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rgb(seed: int = 1, b: int = 2, h: int = 12, w: int = 16) -> torch.Tensor:
    """Random colours with a clipped (1.0) square, so the highlight steps have work to do."""
    x = torch.rand(b, 3, h, w, generator=seeded(seed))
    x[..., 2:6, 3:8] = 1.0
    return x


def gray(seed: int = 2) -> torch.Tensor:
    return torch.rand(2, 1, 12, 16, generator=seeded(seed))


def after(gen: torch.Generator) -> torch.Tensor:
    """Numbers drawn after a blur: they pin how many the blur consumed."""
    return torch.rand(3, generator=gen)


def blur_recipe(blur: Callable, images: torch.Tensor, seed: int = 0) -> Pins:
    gen = seeded(seed)
    out, kernels = blur.sample(images, gen)
    pins = {"out": out, "after": after(gen)}
    if kernels.shape[-1] <= 33:
        pins["kernels"] = kernels
    return pins


def kernel_recipes() -> dict[str, Callable[[], Pins]]:
    def trajectories(n: int, size: int, intensity: float | tuple, seed: int) -> Pins:
        gen = seeded(seed)
        return {"k": trajectory_kernels(n, size, intensity, generator=gen), "after": after(gen)}

    def single(size: int, seed: int) -> Pins:
        gen = seeded(seed)
        return {"k": trajectory_kernels(1, size, 0.7, generator=gen)[0], "after": after(gen)}

    recipes: dict[str, Callable[[], Pins]] = {
        "trajectory/17": lambda: trajectories(4, 17, (0.0, 1.0), 0),
        "trajectory/33": lambda: trajectories(3, 33, 1.0, 5),
        "trajectory/calm": lambda: trajectories(2, 9, 0.0, 6),
        "gaussian": lambda: {"k": gaussian_kernel(9, 1.5)},
        "gaussian/batch": lambda: {"k": gaussian_kernel(8, torch.tensor([1.0, 2.0]))},
        "motion": lambda: {"k": linear_motion_kernel(11, 7.3, 30.0)},
        "disk": lambda: {"k": disk_kernel(9, 3.2)},
    }
    for size in (1, 2, 3, 10):
        recipes[f"trajectory/single{size}"] = functools.partial(single, size, size)
    return recipes


def op_recipes() -> dict[str, Callable[[], Pins]]:
    img = rgb()
    k5 = trajectory_kernels(2, 5, 0.8, generator=seeded(7))
    k9 = trajectory_kernels(2, 9, 0.8, generator=seeded(8))
    k33 = trajectory_kernels(2, 33, 0.8, generator=seeded(9))
    latent = torch.rand(2, 3, 18, 20, generator=seeded(10))
    line = torch.linspace(0, 1, 257)
    small = torch.rand(2, 3, 6, 8, generator=seeded(11))
    odd = torch.rand(1, 3, 5, 7, generator=seeded(12))
    frames = torch.rand(5, 3, 8, 10, generator=seeded(13))

    def noise(shot: float | torch.Tensor, read: float | torch.Tensor) -> Pins:
        gen = seeded(14)
        return {"out": add_poisson_gaussian_noise(img, shot, read, gen), "after": after(gen)}

    recipes: dict[str, Callable[[], Pins]] = {
        "convolve/direct": lambda: {"out": convolve(img, k5)},
        "convolve/fft": lambda: {"out": convolve(img, k9)},
        "convolve/forced_direct": lambda: {"out": convolve(img, k9, fft=False)},
        "convolve/shared": lambda: {"out": convolve(img, k5[0])},
        "convolve/wide": lambda: {"out": convolve(img[..., :10, :9], k33)},
        "convolve/delta": lambda: {"out": convolve(img, torch.ones(2, 1, 1) * 0.5)},
        "valid/fft": lambda: {"out": valid_convolve(latent, k9)},
        "valid/direct": lambda: {"out": valid_convolve(latent, k9, fft=False)},
        "valid/small": lambda: {"out": valid_convolve(latent, k5)},
        "gamma": lambda: {"lin": to_linear(line, "gamma"), "out": from_linear(line, "gamma", 2.4)},
        "noise/scalar": lambda: noise(1e-3, 2e-3),
        "noise/per_image": lambda: noise(torch.tensor([1e-3, 0.0]), torch.tensor([0.0, 3e-3])),
        "jpeg": lambda: {"out": jpeg_compress(img, [75, 90])},
        "gopro": lambda: dict(zip(("blur", "sharp"), gopro_blur(frames), strict=True)),
    }
    for curve in ("gamma", "srgb", "camera"):
        recipes[f"curve/{curve}"] = functools.partial(
            lambda c: {"lin": to_linear(line, c), "out": from_linear(line, c, 2.0)}, curve
        )
    for pattern in BAYER_PATTERNS:
        recipes[f"bayer/{pattern}"] = functools.partial(
            lambda p: {
                "raw": mosaic(small, p),
                "rgb": demosaic_bilinear(mosaic(small, p), p),
                "odd": demosaic_bilinear(mosaic(odd, p), p),
            },
            pattern,
        )
    return recipes


def sampler_recipes() -> dict[str, Callable[[], Pins]]:
    x = rgb()
    camera_off = {
        "blur_off": {"blur": False},
        "linear": {"tone_curve": None},
        "gamma_curve": {"tone_curve": "gamma", "gamma": 2.4},
        "srgb_curve": {"tone_curve": "srgb"},
        "no_saturation": {"saturation_factor": None},
        "no_white_balance": {"wb_red": None, "wb_blue": None},
        "no_mosaic": {"mosaic": False},
        "no_noise": {"noise_shot": None, "noise_read": None},
        "read_only": {"noise_shot": None},
        "zero_noise": {"noise_shot": (0.0, 0.0), "noise_read": (0.0, 0.0)},
        "jpeg": {"jpeg_quality": (80, 95)},
        "BGGR": {"bayer_pattern": "BGGR"},
        "GBRG": {"bayer_pattern": "GBRG"},
        "threshold": {"saturation_threshold": 0.9, "saturation_factor": (2.0, 4.0)},
    }
    recipes: dict[str, Callable[[], Pins]] = {
        "simple": lambda: blur_recipe(SimpleBlur(kernel_size=(5, 15)), x),
        "simple/default": lambda: blur_recipe(SimpleBlur(), x, 3),
        "simple/single": lambda: blur_recipe(SimpleBlur(kernel_size=9), x[0], 4),
        "simple/gray": lambda: blur_recipe(SimpleBlur(kinds=("motion",)), gray(), 5),
        "realistic": lambda: blur_recipe(RealisticBlur(kernel_size=(5, 17)), x),
        "realistic/default": lambda: blur_recipe(RealisticBlur(), x, 3),
        "realistic/exposure_jpeg": lambda: blur_recipe(
            RealisticBlur(kernel_size=(5, 17), exposure=(1.0, 2.0), jpeg_quality=(70, 95)), x
        ),
        "realistic/linear": lambda: blur_recipe(RealisticBlur(gamma=None), x, 4),
        "realistic/no_noise": lambda: blur_recipe(
            RealisticBlur(noise_shot=None, noise_read=None), x, 5
        ),
        "realistic/zero_noise": lambda: blur_recipe(
            RealisticBlur(noise_shot=(0.0, 0.0), noise_read=(0.0, 0.0)), x, 6
        ),
        "realistic/single_gray": lambda: blur_recipe(RealisticBlur(kernel_size=9), gray()[0], 7),
        "camera": lambda: blur_recipe(CameraPipelineBlur(), x),
        "camera/gray": lambda: blur_recipe(CameraPipelineBlur(kernel_size=(5, 13)), gray(), 1),
        "camera/single": lambda: blur_recipe(CameraPipelineBlur(kernel_size=9), x[1], 2),
        # conf/experiment/packaged.yaml's camera (kernels up to 95 px: outputs only).
        "camera/packaged": lambda: blur_recipe(
            CameraPipelineBlur(
                kernel_size=(3, 95),
                intensity=(0.0, 1.0),
                saturation_factor=None,
                jpeg_quality=(70, 95),
            ),
            x,
            8,
        ),
    }
    for name, args in camera_off.items():
        recipes[f"camera/{name}"] = functools.partial(
            lambda a: blur_recipe(CameraPipelineBlur(kernel_size=(5, 17), **a), x, 9), args
        )
    return recipes


def shake_recipe(net_args: dict, train: bool, image_channels: int = 3, seed: int = 0) -> Pins:
    """A BGAN generator as conf/model builds it: NoiseInjection around a ShakeBlurNet."""
    torch.manual_seed(seed)
    g = NoiseInjection(
        functools.partial(ShakeBlurNet, **net_args),
        image_channels=image_channels,
        channels=1,
        scale=0.1,
    )
    g.train(train)
    used: list[torch.Tensor] = []
    g.net.register_forward_hook(lambda net, args, _: used.append(net.camera(args[0]).kernels))
    x = torch.rand(2, image_channels, 12, 16, generator=seeded(20))
    out = g(x)
    pins = {"out": out.detach()}
    if g.net.kernel_size <= 33:
        pins["kernels"] = used[0]
    if train:  # eval mode renders with the averaged statistics, a buffer: no gradient
        weights = torch.rand(out.shape, generator=seeded(21))
        (out * weights).sum().backward()
        pins["grad_raw"] = g.net.raw.grad
    stats = g.net.statistics()
    pins["raw_average"] = g.net.raw_average
    pins["stats"] = torch.stack(list(stats.values())).detach()
    pins["after"] = torch.rand(3)
    return pins


def shake_recipes() -> dict[str, Callable[[], Pins]]:
    default = {"kernel_size": 15, "init_step": 1.0}  # conf/model/default.yaml
    srn = {"kernel_size": 65, "init_step": 3.0}  # conf/model/srn.yaml
    return {
        "shake/train": lambda: shake_recipe(default, True),
        "shake/eval": lambda: shake_recipe(default, False, seed=1),
        "shake/srn": lambda: shake_recipe(srn, True, seed=2),
        "shake/gray_linear": lambda: shake_recipe(
            {"kernel_size": 9, "gamma": None, "noise": False, "max_exposure": 2.0},
            True,
            image_channels=1,
            seed=3,
        ),
        "shake/options": lambda: shake_recipe(
            {
                "kernel_size": 11,
                "steps": 5,
                "densify": 3,
                "init_inertia": 0.8,
                "rate": 4.0,
                "init_noise": (2e-3, 5e-3),
                "average_decay": None,
            },
            True,
            seed=4,
        ),
    }


RECIPES = kernel_recipes() | op_recipes() | sampler_recipes() | shake_recipes()

# Every float pin may move by float32 rounding and no more (FLOAT_ROUNDING); the random draws
# ("after") and every non-float pin must be bit-exact. Rounding moves them for two reasons:
# - the CPU's vector width changes the order of the sums in convolutions and FFTs (measured: an
#   AVX-512 CPU against the one that wrote the pins, <= 4.8e-7 on values in [0, 1]);
# - ShakeBlurNet's kernels come from the one rasteriser now (a scatter-add of bilinear weights
#   per point, where it had its own tent-weight einsum over the grid): the same sums in another
#   order (measured <= 3.6e-7 on values in [0, 1]).
FLOAT_ROUNDING = (1e-6, 0.0)

# Exceptions: (recipe prefix, key) -> (atol, rtol). ShakeBlurNet's gradient is a sum over every
# output, so it moves by a relative 1.4e-6 where the pins were written and 1.1e-5 on AVX-512.
TOLERANCE: dict[tuple[str, str], tuple[float, float]] = {
    ("shake/", "grad_raw"): (0.0, 5e-5),
}


def tolerance(name: str, key: str, value: torch.Tensor) -> tuple[float, float]:
    for (prefix, tol_key), tol in TOLERANCE.items():
        if name.startswith(prefix) and key == tol_key:
            return tol
    if key == "after" or not value.is_floating_point():
        return 0.0, 0.0
    return FLOAT_ROUNDING


def compute(name: str) -> Pins:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # reductions in one fixed order
    try:
        return {key: value.detach().clone() for key, value in RECIPES[name]().items()}
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pinned() -> dict[str, Pins]:
    if WRITE:
        flat = {
            f"{name}|{key}": value.numpy()
            for name in RECIPES
            for key, value in compute(name).items()
        }
        PINS.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(PINS, **flat)
    pins: dict[str, Pins] = {}
    with np.load(PINS) as stored:
        for entry in stored.files:
            name, key = entry.split("|")
            pins.setdefault(name, {})[key] = torch.from_numpy(stored[entry])
    return pins


def test_every_recipe_is_pinned(pinned: dict[str, Pins]) -> None:
    assert sorted(pinned) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_blur_matches_its_pinned_output(name: str, pinned: dict[str, Pins]) -> None:
    got, want = compute(name), pinned[name]
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        atol, rtol = tolerance(name, key, value)
        if atol == rtol == 0.0:
            assert torch.equal(got[key], value), f"{name}/{key} changed"
        else:
            torch.testing.assert_close(got[key], value, atol=atol, rtol=rtol, msg=f"{name}/{key}")
