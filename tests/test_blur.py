"""Blur kernels, convolution, noise, JPEG, frame averaging and the two classic synthetic blurs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from realblur_gan.camera import (
    RealisticBlur,
    SimpleBlur,
    add_poisson_gaussian_noise,
    convolve,
    disk_kernel,
    gaussian_kernel,
    gopro_blur,
    jpeg_compress,
    linear_motion_kernel,
    trajectory_kernel,
    trajectory_kernels,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_valid_kernels(k: torch.Tensor) -> None:
    assert k.dtype == torch.float32
    assert torch.isfinite(k).all()
    assert (k >= 0).all()
    torch.testing.assert_close(k.sum(dim=(-2, -1)), torch.ones(k.shape[:-2]), atol=1e-5, rtol=0)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Hundreds of tiny tensor ops run far faster without intra-op threads on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_trajectory_kernels_valid_for_every_size_and_intensity() -> None:
    gen = seeded()
    for size in range(3, 102):
        for intensity in (0.0, 1.0, (0.0, 1.0)):
            k = trajectory_kernels(4, size, intensity, generator=gen)
            assert k.shape == (4, size, size)
            assert_valid_kernels(k)


def test_trajectory_kernel_single_and_tiny_sizes() -> None:
    for size in (1, 2, 3):
        assert_valid_kernels(trajectory_kernel(size, 1.0, generator=seeded()))


def test_trajectory_kernels_deterministic_with_seed() -> None:
    a = trajectory_kernels(8, 33, (0.0, 1.0), generator=seeded(3))
    b = trajectory_kernels(8, 33, (0.0, 1.0), generator=seeded(3))
    c = trajectory_kernels(8, 33, (0.0, 1.0), generator=seeded(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_trajectory_intensity_spreads_the_kernel() -> None:
    calm = trajectory_kernels(32, 33, 0.0, generator=seeded())
    shaky = trajectory_kernels(32, 33, 1.0, generator=seeded())
    assert (shaky > 1e-4).sum() > 1.5 * (calm > 1e-4).sum()


def test_trajectory_kernels_are_centred() -> None:
    k = trajectory_kernels(32, 31, (0.0, 1.0), generator=seeded())
    coords = torch.arange(31, dtype=torch.float32)
    cy = (k.sum(dim=2) * coords).sum(dim=1)
    cx = (k.sum(dim=1) * coords).sum(dim=1)
    # The centre of mass sits on the centre unless the path had to shift to fit the kernel.
    assert (cy - 15).abs().median() < 0.5 and (cx - 15).abs().median() < 0.5


@pytest.mark.parametrize("bad", [-0.1, 1.5, (0.8, 0.2)])
def test_trajectory_intensity_checked(bad: float | tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="intensity"):
        trajectory_kernels(1, 9, bad)


def test_parametric_kernels() -> None:
    for size in (3, 4, 15, 64):
        assert_valid_kernels(gaussian_kernel(size, 1.5))
        assert_valid_kernels(linear_motion_kernel(size, size * 0.8, 30.0))
        assert_valid_kernels(disk_kernel(size, size / 3))
    g = gaussian_kernel(9, 2.0)
    torch.testing.assert_close(g, g.T)
    assert gaussian_kernel(9, torch.tensor([1.0, 2.0])).shape == (2, 9, 9)
    horizontal = linear_motion_kernel(9, 6.0, 0.0)
    assert horizontal[4].sum() > 0.99  # the whole stroke lies on the middle row
    assert disk_kernel(9, 0.0)[4, 4] == 1.0
    assert linear_motion_kernel(9, 0.0, 45.0)[4, 4] == 1.0
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(5, 0.0)


@pytest.mark.parametrize("fft", [False, True])
def test_convolve_delta_is_identity(fft: bool, device: torch.device) -> None:
    x = torch.rand(2, 3, 20, 23, device=device)
    delta = torch.zeros(7, 7)
    delta[3, 3] = 1.0
    torch.testing.assert_close(convolve(x, delta, fft=fft), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fft", [False, True])
def test_convolve_is_a_true_convolution(fft: bool) -> None:
    x = torch.rand(1, 1, 16, 16)
    shift = torch.zeros(3, 3)
    shift[1, 2] = 1.0  # a point light drawn one pixel right moves the image right
    out = convolve(x, shift, fft=fft)
    torch.testing.assert_close(out[..., 1:], x[..., :-1], atol=1e-5, rtol=0)


def test_convolve_fft_matches_direct_per_sample_kernels() -> None:
    x = torch.rand(3, 2, 30, 41)
    k = trajectory_kernels(3, 15, 0.7, generator=seeded())
    direct = convolve(x, k, fft=False)
    torch.testing.assert_close(convolve(x, k, fft=True), direct, atol=1e-5, rtol=0)
    for i in range(3):  # each image got its own kernel
        torch.testing.assert_close(
            convolve(x[i : i + 1], k[i]), direct[i : i + 1], atol=1e-5, rtol=0
        )


def test_convolve_kernel_larger_than_image_and_even_size() -> None:
    x = torch.full((1, 3, 6, 5), 0.25)
    for k in (trajectory_kernel(31, 1.0, seeded()), gaussian_kernel(8, 2.0)):
        out = convolve(x, k)
        assert out.shape == x.shape
        torch.testing.assert_close(out, x, atol=1e-5, rtol=0)  # reflect keeps a flat image flat
    with pytest.raises(ValueError, match="kernels"):
        convolve(torch.rand(2, 1, 8, 8), torch.rand(3, 5, 5))


def test_poisson_gaussian_noise() -> None:
    x = torch.full((1, 1, 200, 200), 0.5)
    assert torch.equal(add_poisson_gaussian_noise(x, 0.0, 0.0), x)
    noisy = add_poisson_gaussian_noise(x, 0.0, 0.05, generator=seeded())
    assert abs(noisy.std().item() - 0.05) < 0.005
    shot = add_poisson_gaussian_noise(x, 0.01, 0.0, generator=seeded())
    assert abs(shot.std().item() - math.sqrt(0.005)) < 0.01
    loud = add_poisson_gaussian_noise(torch.rand(2, 3, 9, 9), torch.tensor([0.5, 0.0]), 0.3)
    assert loud.min() >= 0 and loud.max() <= 1


def test_jpeg_compress() -> None:
    x = torch.linspace(0, 1, 32).repeat(3, 32, 1)
    for img in (x, x[None], x[:1]):
        out = jpeg_compress(img, 95)
        assert out.shape == img.shape and out.dtype == torch.float32
        assert (out - img).abs().mean() < 0.02
    assert (jpeg_compress(x, 5) - x).abs().mean() > (jpeg_compress(x, 95) - x).abs().mean()


def test_gopro_blur_averages_in_linear_light() -> None:
    frames = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4), torch.zeros(3, 4, 4)])
    blur, sharp = gopro_blur(frames, gamma=2.2)
    assert blur.shape == sharp.shape == (3, 4, 4)
    torch.testing.assert_close(blur, torch.full((3, 4, 4), (1 / 3) ** (1 / 2.2)))
    assert torch.equal(sharp, frames[1])
    flat = torch.full((5, 1, 3, 3), 0.3)
    torch.testing.assert_close(gopro_blur(flat)[0], flat[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "blur",
    [
        RealisticBlur(kernel_size=(5, 15), exposure=(1.0, 1.5), jpeg_quality=(60, 95)),
        RealisticBlur(kernel_size=9, gamma=None, noise_shot=None, noise_read=None),
        SimpleBlur(kernel_size=(3, 13)),
        SimpleBlur(kernel_size=11, kinds=["motion"]),
    ],
    ids=["realistic-full", "realistic-bare", "simple", "simple-motion"],
)
def test_blur_callables(blur: RealisticBlur | SimpleBlur) -> None:
    batch = torch.rand(3, 3, 24, 20)
    out = blur(batch, generator=seeded())
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    single = blur(batch[0], generator=seeded())
    assert single.shape == batch[0].shape
    again, kernels = blur.sample(batch, generator=seeded())
    assert torch.equal(again, out) and kernels.shape[0] == 3
    assert_valid_kernels(kernels)
    # The kernels are what draw() gives for the same seed: sampling is draw, then render.
    assert torch.equal(blur.draw(3, seeded()).kernels, kernels)


def test_realistic_blur_bare_is_plain_convolution() -> None:
    blur = RealisticBlur(kernel_size=9, gamma=None, noise_shot=None, noise_read=None)
    x = torch.rand(2, 3, 16, 16)
    out, kernels = blur.sample(x, generator=seeded())
    torch.testing.assert_close(out, convolve(x, kernels).clamp(0, 1))


def test_realistic_blur_gray_and_every_simple_kind() -> None:
    assert RealisticBlur(jpeg_quality=80)(torch.rand(1, 16, 16)).shape == (1, 16, 16)
    for kind in SimpleBlur.KINDS:
        assert SimpleBlur(kinds=[kind])(torch.rand(2, 1, 16, 16)).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="kinds"):
        SimpleBlur(kinds=["box"])


def test_blur_callables_instantiate_from_hydra() -> None:
    cfg = OmegaConf.create(
        {"_target_": "realblur_gan.camera.RealisticBlur", "kernel_size": [9, 17], "intensity": 0.5}
    )
    blur = instantiate(cfg)
    assert blur.kernel_size == (9, 17)
    assert blur(torch.rand(3, 16, 16)).shape == (3, 16, 16)
    simple = instantiate({"_target_": "realblur_gan.camera.SimpleBlur", "kinds": ["disk"]})
    assert simple.kinds == ("disk",)
