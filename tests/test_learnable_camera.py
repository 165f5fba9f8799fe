"""ShakeBlurNet: the learnable camera, BGAN's generator that renders shake kernels and a sensor."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from realblur_gan.camera import convolve, rasterise
from realblur_gan.errors import ArgumentError
from realblur_gan.nets import NoiseInjection, ShakeBlurNet
from realblur_gan.nets.learnable_camera import noise_latent


def _smooth(b: int = 2, c: int = 3, h: int = 40, w: int = 48) -> torch.Tensor:
    """Smooth test images with an edge, in [0.2, 0.8] (no saturation at gain 1)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = 0.2 + 0.3 * xx + 0.3 * (yy > 0.5).float()
    return img.expand(b, c, h, w).clone()


def _with_noise(x: torch.Tensor, channels: int = 1, scale: float = 0.1) -> torch.Tensor:
    b, _, h, w = x.shape
    return torch.cat([x, scale * torch.randn(b, channels, h, w)], dim=1)


@pytest.mark.parametrize(("channels", "size"), [(3, (37, 53)), (1, (64, 64)), (3, (16, 96))])
def test_any_size_and_channels(channels: int, size: tuple[int, int]) -> None:
    net = ShakeBlurNet(channels + 1, channels, kernel_size=9)
    x = torch.rand(2, channels, *size)
    y = net(_with_noise(x))
    assert y.shape == x.shape
    assert float(y.detach().min()) >= 0.0 and float(y.detach().max()) <= 1.0


def test_without_noise_it_is_the_shake_kernel_in_linear_light() -> None:
    """The forward is the camera: gamma, the shake kernel, exposure and clipping, gamma back."""
    net = ShakeBlurNet(4, 3, kernel_size=9, gamma=2.2, noise=False, init_step=2.0)
    x = _with_noise(_smooth())
    camera = net.camera(x)
    assert camera.shot is None and camera.kernels.shape == (2, 9, 9)
    exposure = net.statistics()["exposure"]
    expected = (convolve(x[:, :3].pow(2.2), camera.kernels) * exposure).clamp(0, 1)
    torch.testing.assert_close(net(x), expected.pow(1 / 2.2), atol=1e-5, rtol=1e-4)


def test_the_noise_map_is_the_latent_the_shake_is_drawn_from() -> None:
    torch.manual_seed(0)
    g = NoiseInjection(functools.partial(ShakeBlurNet, kernel_size=9), image_channels=3, scale=0.1)
    x = _smooth()
    kernels = []
    g.net.register_forward_hook(
        lambda net, args, _: kernels.append(net.camera(args[0]).kernels.detach())
    )
    g(x)
    g(x)
    assert float((kernels[1] - kernels[0]).abs().max()) > 1e-3
    latent = noise_latent(0.1 * torch.randn(4, 1, 64, 64), 4)
    assert latent.shape == (4, 16)
    assert 0.7 < float(latent.std()) < 1.3  # unit scale whatever the injection's scale


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"kernel_size": 4}, "kernel_size"),
        ({"kernel_size": 1}, "kernel_size"),
        ({"in_channels": 3}, "in_channels"),
        ({"gamma": 0.0}, "gamma"),
        ({"max_exposure": 0.5}, "max_exposure"),
        ({"rate": 0.0}, "rate"),
        ({"average_decay": 1.0}, "average_decay"),
    ],
)
def test_bad_arguments_name_the_key(kwargs: dict, key: str) -> None:
    args = {"in_channels": 4, "out_channels": 3, **kwargs}
    with pytest.raises(ArgumentError, match=key):
        ShakeBlurNet(**args)


def test_shake_paths_are_drawn_by_the_one_rasteriser() -> None:
    """A centred path of one point sits on the kernel's centre pixel; the net adds the offset."""
    k = rasterise(torch.tensor([[[0.5, -0.25]]]) + 2, 5)[0]
    # x = 0.5 between columns 2 and 3; y = -0.25 mostly on row 2, a quarter on row 1.
    torch.testing.assert_close(k[2, 2:4], torch.tensor([0.375, 0.375]))
    torch.testing.assert_close(k[1, 2:4], torch.tensor([0.125, 0.125]))


def test_shake_kernels_vary_with_the_noise_and_their_length_with_the_step() -> None:
    net = ShakeBlurNet(4, 3, kernel_size=21)
    torch.manual_seed(0)
    noise = torch.randn(16, 1, 64, 64)
    k = net.kernels(noise).detach()
    assert k.shape == (16, 21, 21)
    torch.testing.assert_close(k.sum((1, 2)), torch.ones(16))
    assert float((k[0] - k[1]).abs().sum()) > 0.1  # different images, different shakes

    def extent(kernels: torch.Tensor) -> float:
        r = torch.arange(21.0) - 10
        mx, my = kernels.sum(1), kernels.sum(2)
        var = (mx * r**2).sum(1) - (mx * r).sum(1) ** 2 + (my * r**2).sum(1) - (my * r).sum(1) ** 2
        return float(var.sqrt().mean())

    short = extent(k)
    with torch.no_grad():
        net.raw[0] += math.log(3.0) / net.rate  # 3x longer steps
    assert extent(net.kernels(noise).detach()) > 2.0 * short


def test_shake_statistics_start_where_configured_and_get_gradients() -> None:
    net = ShakeBlurNet(4, 3, init_step=1.5, init_inertia=0.7, init_noise=(2e-4, 3e-3))
    stats = net.statistics()
    assert abs(float(stats["step_px"]) - 1.5) < 1e-5
    assert abs(float(stats["inertia"]) - 0.7) < 1e-5
    assert abs(float(stats["read"]) - 3e-3) < 1e-7
    net(_with_noise(_smooth(h=48, w=48))).square().mean().backward()
    grad = net.raw.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert float(grad[0].abs()) > 0  # the step length reaches the loss


def test_shake_learns_the_blur_length_of_pairs() -> None:
    """Fit the step length to pairs made by the same model with 2.5x longer steps."""
    torch.manual_seed(0)
    target_net = ShakeBlurNet(4, 3, kernel_size=15, init_step=2.5, noise=False)
    net = ShakeBlurNet(4, 3, kernel_size=15, init_step=1.0, noise=False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        x = _with_noise(torch.rand(4, 3, 32, 32).pow(3))  # sparse bright points: clear blur
        with torch.no_grad():
            target = target_net(x)
        loss = (net(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert 2.0 < float(net.statistics()["step_px"]) < 3.0


def test_eval_mode_renders_with_the_moving_average_of_the_statistics() -> None:
    net = ShakeBlurNet(4, 3, average_decay=0.5)
    x = _with_noise(_smooth(h=32, w=32))
    with torch.no_grad():
        net.raw[0] += math.log(4.0) / net.rate  # the live step jumps 4x
    net.train()
    net(x)  # one training forward: the average moves half way (in log space)
    live, averaged = net.statistics(averaged=False), net.statistics(averaged=True)
    assert abs(float(live["step_px"]) - 4.0) < 1e-4
    assert abs(float(averaged["step_px"]) - 2.0) < 1e-4
    net.eval()
    assert float(net.statistics()["step_px"]) == float(averaged["step_px"])
    net.train()
    assert float(net.statistics()["step_px"]) == float(live["step_px"])
    no_average = ShakeBlurNet(4, 3, average_decay=None).eval()
    with torch.no_grad():
        no_average.raw[0] += 1.0
    no_average.train()(x)
    no_average.eval()
    torch.testing.assert_close(no_average.raw_average, no_average.raw.detach())


def test_checkpoint_keys_are_the_statistics_and_their_average() -> None:
    """Checkpoints store exactly these two tensors; renaming either would orphan trained runs."""
    state = ShakeBlurNet(4, 3).state_dict()
    assert set(state) == {"raw", "raw_average"} and state["raw"].shape == (6,)
    again = ShakeBlurNet(4, 3, init_step=2.0)
    again.load_state_dict(state)
    assert torch.equal(again.raw, state["raw"])
