"""Generators and discriminators: shapes, size checks, identity at init, receptive field."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from realblur_gan.errors import ArgumentError
from realblur_gan.nets import (
    MultiScaleGenerator,
    MultiScalePatchGAN,
    NAFNet,
    NoiseInjection,
    PatchGAN,
    ResNetGenerator,
    UNet,
    init_weights,
)
from realblur_gan.training.losses import multiscale_content_loss

# Tiny generator factories, keyed by name; each takes the image channel count.
GENERATORS: dict[str, Callable[[int], nn.Module]] = {
    "unet": lambda c: UNet(c, c, width=4, depth=2),
    "unet_noise": lambda c: NoiseInjection(
        functools.partial(UNet, width=4, depth=2), channels=1, image_channels=c
    ),
    "resnet": lambda c: ResNetGenerator(c, c, width=4, n_blocks=1),
    "multiscale_resnet": lambda c: MultiScaleGenerator(
        c, c, scale_net=functools.partial(ResNetGenerator, width=4, n_blocks=1)
    ),
    "multiscale_unet": lambda c: MultiScaleGenerator(
        c, c, num_scales=2, scale_net=functools.partial(UNet, width=4, depth=1)
    ),
    "scale_recurrent_unet": lambda c: MultiScaleGenerator(
        c,
        c,
        scale_net=functools.partial(UNet, width=4, depth=1, keep_mean=True),
        share_weights=True,
    ),
    "nafnet": lambda c: NAFNet(
        c, c, width=4, enc_blocks=[1, 1], middle_blocks=1, dec_blocks=[1, 1]
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("batch", [1, 4])
def test_generator_shapes(name: str, channels: int, batch: int, device: torch.device) -> None:
    net = GENERATORS[name](channels).to(device)
    s = net.stride
    # An odd and an even multiple of the stride in one input.
    x = torch.rand(batch, channels, 3 * s, 2 * s, device=device)
    y = net(x)
    assert y.shape == x.shape
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_strides() -> None:
    assert UNet(depth=4).stride == 16
    assert ResNetGenerator(width=4, n_blocks=1).stride == 1
    assert NoiseInjection(UNet(4, depth=3)).stride == 8
    assert NoiseInjection(nn.Identity(), channels=0).stride == 1
    sub = functools.partial(UNet, width=4, depth=2)
    assert MultiScaleGenerator(scale_net=sub).stride == 4 * 4


@pytest.mark.parametrize("name", ["unet", "unet_noise", "multiscale_resnet"])
def test_non_multiple_size_is_a_clear_error(name: str) -> None:
    net = GENERATORS[name](3)
    s = net.stride
    with pytest.raises(ValueError, match=rf"multiples of {s}, got {s + 1}x{s}.*pad"):
        net(torch.rand(1, 3, s + 1, s))


def test_resnet_takes_any_size() -> None:
    assert GENERATORS["resnet"](3)(torch.rand(1, 3, 7, 5)).shape == (1, 3, 7, 5)


@pytest.mark.parametrize(
    "net",
    [
        UNet(4, 3, width=4, depth=2).zero_residual_(),
        ResNetGenerator(4, 3, width=4, n_blocks=1).zero_residual_(),
    ],
    ids=["unet", "resnet"],
)
def test_zeroed_residual_branch_is_identity(net: nn.Module) -> None:
    # The 4th input channel stands for the BGAN's noise map: read, but not part of the residual.
    x = torch.rand(2, 4, 8, 8)
    torch.testing.assert_close(net(x), x[:, :3])
    net.eval()
    torch.testing.assert_close(net(x), x[:, :3])


def test_output_range() -> None:
    x = torch.rand(2, 3, 8, 8)
    net = UNet(3, 3, width=4, depth=2, global_residual=False)
    y = net(x)
    assert y.min() > 0 and y.max() < 1
    net = UNet(3, 3, width=4, depth=2)
    nn.init.constant_(net.tail.bias, 2.0)
    assert net(x).max() > 1  # unclamped in training, so overshooting pixels keep a gradient
    assert net.eval()(x).max() == 1  # clamped for inference


def test_global_residual_needs_enough_input_channels() -> None:
    with pytest.raises(ValueError, match="in_channels >= out_channels"):
        UNet(1, 3)
    with pytest.raises(ValueError, match="in_channels >= out_channels"):
        ResNetGenerator(1, 3)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_norms_and_dropout(norm: str) -> None:
    net = UNet(3, 3, width=4, depth=2, norm=norm, dropout=0.5)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="norm='group': must be one of"):
        UNet(norm="group")


def test_init_weights_is_pix2pix_normal() -> None:
    conv = nn.Conv2d(64, 64, 3)
    nn.init.constant_(conv.bias, 1.0)
    init_weights(conv, std=0.02)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert conv.bias.abs().max() == 0
    # With norm layers the nets keep pix2pix's N(0, 0.02); without (the default) they use He init,
    # because N(0, 0.02) through un-normalised layers starts the generator dead.
    assert UNet(width=4, depth=2, norm="batch").head[0].weight.std().item() == pytest.approx(
        0.02, rel=0.3
    )
    fan_in = 3 * 3 * 3
    he_std = (2 / (1 + 0.2**2) / fan_in) ** 0.5
    assert UNet(width=4, depth=2).head[0].weight.std().item() == pytest.approx(he_std, rel=0.3)


def test_noise_injection() -> None:
    seen: list[torch.Tensor] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return x

    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    NoiseInjection(Spy(), channels=2, scale=0.5)(x)
    y = seen[-1]
    assert y.shape == (2, 5, 4, 4) and y.dtype == torch.float64
    torch.testing.assert_close(y[:, :3], x)
    NoiseInjection(Spy(), channels=2, scale=0.5)(x)
    assert not torch.equal(seen[-1][:, 3:], y[:, 3:])  # fresh noise every call
    NoiseInjection(Spy(), channels=0)(x)
    assert seen[-1] is x


def _first_conv(net: nn.Module) -> nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("image_channels", [1, 3])
@pytest.mark.parametrize("noise_channels", [0, 1, 2])
def test_noise_injection_builds_its_net_for_image_plus_noise_channels(
    image_channels: int, noise_channels: int
) -> None:
    g = NoiseInjection(
        functools.partial(UNet, width=4, depth=2),
        channels=noise_channels,
        image_channels=image_channels,
    )
    assert _first_conv(g).in_channels == image_channels + noise_channels
    assert g.image_channels == image_channels and g.stride == 4
    x = torch.rand(2, image_channels, 16, 16)
    assert g(x).shape == x.shape


def test_noise_injection_factory_needs_image_channels_and_names_inner_arguments() -> None:
    with pytest.raises(ArgumentError, match="image_channels=None: must be >= 1"):
        NoiseInjection(functools.partial(UNet, width=4))
    # An inner net's bad value is named under the wrapper's argument: the config key's path.
    with pytest.raises(ArgumentError, match=r"^net\.depth=0: must be >= 1$"):
        NoiseInjection(functools.partial(UNet, depth=0), image_channels=3)
    with pytest.raises(ArgumentError, match=r"^scale_net\.width=0: must be >= 1$"):
        MultiScaleGenerator(scale_net=functools.partial(ResNetGenerator, width=0))


@pytest.mark.parametrize("config", ["default", "paper", "nafnet", "deepdeblur", "camera_nafnet"])
@pytest.mark.parametrize("image_channels", [1, 3])
def test_model_configs_state_image_and_noise_channels_once(config: str, image_channels: int):
    from omegaconf import OmegaConf

    from realblur_gan.training.config import CONFIG_DIR

    raw = OmegaConf.load(Path(CONFIG_DIR) / "model" / f"{config}.yaml")
    # The generator's input channels (image + noise) are nowhere written: the wrapper adds them.
    assert not {"in_channels", "out_channels"} & set(raw.bgan_g.net)
    model = OmegaConf.create({"model": raw}).model
    model.image_channels = image_channels
    x = torch.empty(2, image_channels, 64, 64, device="meta")
    with torch.device("meta"):  # the paper-size nets are checked without allocating them
        g = instantiate(model.bgan_g)
        assert g(x).shape == x.shape
    if any(isinstance(m, nn.Conv2d) for m in g.net.modules()):
        assert _first_conv(g).in_channels == image_channels + model.noise_channels
    else:  # a camera model (ShakeBlurNet): no conv, its split of the input says the same
        assert (g.net.image_channels, g.net.noise_channels) == (image_channels, 1)


def test_multiscale_pyramid_and_loss() -> None:
    net = GENERATORS["multiscale_resnet"](3)
    x = torch.rand(2, 3, 16, 8)
    outputs = net.forward_pyramid(x)
    assert [o.shape[-2:] for o in outputs] == [(4, 2), (8, 4), (16, 8)]
    torch.testing.assert_close(net(x), outputs[-1])
    target = torch.rand(2, 3, 16, 8)
    perfect = [nn.functional.avg_pool2d(target, k) for k in (4, 2, 1)]
    assert multiscale_content_loss(perfect, target, nn.L1Loss()).item() == 0
    loss = multiscale_content_loss(outputs, target, nn.L1Loss())
    assert loss.item() > 0
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_multiscale_from_hydra_partial() -> None:
    cfg = {
        "_target_": "realblur_gan.nets.MultiScaleGenerator",
        "in_channels": 4,
        "scale_net": {
            "_target_": "realblur_gan.nets.UNet",
            "_partial_": True,
            "width": 4,
            "depth": 1,
        },
    }
    net = instantiate(cfg)
    assert net.stride == 8
    assert net(torch.rand(1, 4, 8, 8)).shape == (1, 3, 8, 8)


def test_scale_recurrent_generator_feeds_the_coarser_estimate_to_one_net() -> None:
    unet = functools.partial(UNet, width=4, depth=2)
    shared = MultiScaleGenerator(scale_net=unet, share_weights=True)
    (net,) = shared.nets
    # Every scale's net sees the estimate and its own input: 6 channels, one set of weights.
    assert net.head[0].in_channels == 6 and shared.stride == 16
    separate = MultiScaleGenerator(scale_net=unet)
    assert sum(p.numel() for p in separate.parameters()) > 2.9 * sum(
        p.numel() for p in shared.parameters()
    )
    # An untrained (zero-residual) net starts as the identity at every scale.
    net.zero_residual_()
    x = torch.rand(2, 3, 32, 48)
    seen: list[torch.Tensor] = []
    handle = net.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    out = shared.forward_pyramid(x)
    handle.remove()
    for s, factor in enumerate((4, 2, 1)):
        torch.testing.assert_close(out[s], nn.functional.avg_pool2d(x, factor) if factor > 1 else x)
    # Each finer scale's net sees its input and the upsampled estimate of the scale below; the
    # coarsest sees its own input twice.
    torch.testing.assert_close(seen[0][:, 3:], seen[0][:, :3])
    up = nn.functional.interpolate(out[0], scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(seen[1][:, 3:], up)
    # The full-resolution loss reaches the one net through every scale.
    net.tail.weight.data.normal_(0, 0.1)
    shared.zero_grad()
    shared(x).square().mean().backward()
    assert net.head[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("training", [True, False])
def test_keep_mean_keeps_every_channel_mean_of_the_input(training: bool) -> None:
    torch.manual_seed(0)
    net = UNet(width=4, depth=2, keep_mean=True, tail_scale=0.1).train(training)
    x = (0.3 + 0.4 * torch.rand(2, 3, 32, 32)).requires_grad_()  # no clamping in eval mode
    y = net(x)
    assert (y - x).abs().mean() > 1e-3  # the net does change the image
    torch.testing.assert_close(y.mean((2, 3)), x.mean((2, 3)), atol=1e-6, rtol=0)
    if training:
        y.square().mean().backward()
        assert x.grad is not None and net.head[0].weight.grad.abs().sum() > 0
    with pytest.raises(ArgumentError, match=r"keep_mean=True: needs global_residual=true"):
        UNet(width=4, depth=2, keep_mean=True, global_residual=False)


def _receptive_field(d: PatchGAN, size: int) -> tuple[int, int]:
    x = torch.rand(1, 3, size, size, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = support.any(dim=1).nonzero()
    cols = support.any(dim=0).nonzero()
    # The support must not touch the border, or padding would hide part of the field.
    assert rows.min() > 0 and rows.max() < size - 1
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field(n_layers: int, field: int) -> None:
    # No norm: instance norm statistics would spread gradient over the whole image.
    d = PatchGAN(width=4, n_layers=n_layers, norm="none")
    assert _receptive_field(d, 160) == (field, field)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("batch", [1, 4])
def test_patchgan_shapes(channels: int, batch: int, device: torch.device) -> None:
    d = PatchGAN(channels, width=4).to(device)
    assert d(torch.rand(batch, channels, 64, 64, device=device)).shape == (batch, 1, 6, 6)
    assert d(torch.rand(batch, channels, 96, 64, device=device)).shape == (batch, 1, 10, 6)


def test_conditional_patchgan() -> None:
    d = PatchGAN(3, width=4, cond_channels=3, spectral_norm=True)
    x = torch.rand(2, 3, 64, 64)
    assert d(x, x).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="needs a cond"):
        d(x)
    with pytest.raises(ValueError, match="cond_channels=0"):
        PatchGAN(width=4)(x, x)


@pytest.mark.parametrize("cond_channels", [0, 1])
def test_multiscale_patchgan(cond_channels: int) -> None:
    d = MultiScalePatchGAN(1, width=4, cond_channels=cond_channels)
    x = torch.rand(2, 1, 128, 96)
    out = d(x, x if cond_channels else None)
    assert isinstance(out, list)
    assert [o.shape for o in out] == [(2, 1, 14, 10), (2, 1, 6, 4)]


@pytest.mark.parametrize("config", ["paper", "deepdeblur", "camera_nafnet"])
def test_model_configs_build(config: str) -> None:
    # Built on the meta device: shapes are checked without allocating the paper-size nets.
    from omegaconf import OmegaConf

    from realblur_gan.training.config import CONFIG_DIR

    path = Path(CONFIG_DIR) / "model" / f"{config}.yaml"
    model = OmegaConf.create({"model": OmegaConf.load(path)}).model
    default = OmegaConf.load(path.with_name("default.yaml"))
    assert set(model) == set(default)  # nets only: how a BGAN trains is the stages' business
    x = torch.empty(2, 3, 64, 64, device="meta")
    # 70x70 PatchGANs of 3 layers on 64 px: three stride-2 convs to 8, two 4x4 convs to 6; the
    # two-scale D (deepdeblur) also judges the image halved, 32 px -> 2.
    patches = {"deepdeblur": [(2, 1, 6, 6), (2, 1, 2, 2)]}.get(config, [(2, 1, 6, 6)])

    def shapes(logits: torch.Tensor | list[torch.Tensor]) -> list[tuple[int, ...]]:
        return [tuple(t.shape) for t in (logits if isinstance(logits, list) else [logits])]

    with torch.device("meta"):
        for key in ("bgan_g", "dbgan_g"):
            assert instantiate(model[key])(x).shape == x.shape
        for key in ("bgan_d", "dbgan_d"):
            assert shapes(instantiate(model[key])(x)) == patches
        assert shapes(instantiate(model["bgan_d_conditional"])(x, x)) == patches


def test_untrained_residual_unet_starts_near_the_identity() -> None:
    # A restoration net that starts far from its input spends its first hundreds of steps
    # climbing back (with the old 0.1 tail scale an untrained DBGAN scored 23 dB vs its input).
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    net = UNet(3, 3, width=8, depth=2).eval()
    with torch.no_grad():
        mse = ((net(x) - x) ** 2).mean()
    assert -10 * torch.log10(mse) > 35


@pytest.mark.parametrize("dtype", [torch.float64])
@pytest.mark.parametrize("name", ["unet", "resnet", "multiscale_unet", "nafnet"])
def test_generator_forward_gradcheck(name: str, device: torch.device, dtype: torch.dtype) -> None:
    # Training mode (no output clamp): the input gradient every GAN step relies on, DBGAN's loss
    # reaching BGAN's blur in the joint scheme among them.
    torch.manual_seed(0)
    net = GENERATORS[name](3).to(device, dtype).train()
    x = torch.rand(1, 3, 8, 8, dtype=dtype, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))


@pytest.mark.parametrize("dtype", [torch.float64])
@pytest.mark.parametrize("cond_channels", [0, 3])
def test_patchgan_forward_gradcheck(
    cond_channels: int, device: torch.device, dtype: torch.dtype
) -> None:
    # The generator step's gradient passes through D to the fake image (and the condition).
    torch.manual_seed(0)
    d = PatchGAN(3, width=4, n_layers=1, cond_channels=cond_channels).to(device, dtype)
    x = torch.rand(1, 3, 16, 16, dtype=dtype, device=device, requires_grad=True)
    if cond_channels:
        cond = torch.rand(1, 3, 16, 16, dtype=dtype, device=device, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, c: d(a, c), (x, cond))
    else:
        assert torch.autograd.gradcheck(d, (x,))


@pytest.mark.parametrize(("slope", "learns"), [(0.0, False), (0.2, True)])
def test_leaky_decoder_still_learns_after_its_units_went_negative(
    slope: float, learns: bool
) -> None:
    # The failure decoder_slope fixes: once every pre-activation of the last decoder block is
    # negative, ReLUs pass no gradient and a keep-mean net stays the identity for good.
    torch.manual_seed(0)
    net = UNet(width=4, depth=2, keep_mean=True, decoder_slope=slope)
    last_conv = net.ups[-1].merge[0]
    with torch.no_grad():
        last_conv.bias.fill_(-100.0)
    x = torch.rand(2, 3, 16, 16)
    out = net(x)
    ((out - x.flip(-1)) ** 2).mean().backward()
    grad = last_conv.weight.grad.abs().sum().item()
    assert (grad > 0) is learns
    assert torch.allclose(out, x, atol=1e-6) is not learns


def test_decoder_slope_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ArgumentError, match=r"decoder_slope=1.5: must be in \[0, 1\)"):
        UNet(width=4, depth=2, decoder_slope=1.5)
