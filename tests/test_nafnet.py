"""NAFNet: shapes at any size, gradient flow past the zero-init scales, identity start, BGAN noise
wrapper, predict's padding, LayerNorm implementations, memory formats, config and export."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

from realblur_gan.inference.tiling import deblur_image
from realblur_gan.nets import NAFBlock, NAFNet, NoiseInjection
from realblur_gan.nets.nafnet import LAYER_NORM_IMPLS, ContextPool, LayerNorm2d
from realblur_gan.training.config import CONFIG_DIR
from realblur_gan.weights.checkpoints import load_generator


def tiny(in_channels: int = 3, out_channels: int = 3, **kwargs: object) -> NAFNet:
    """Two levels (stride 4), one block everywhere, 4 channels: milliseconds per call."""
    config: dict[str, object] = {
        "width": 4,
        "enc_blocks": [1, 1],
        "middle_blocks": 1,
        "dec_blocks": [1, 1],
    }
    return NAFNet(in_channels, out_channels, **(config | kwargs))  # type: ignore[arg-type]


def randomise_scales_(net: nn.Module) -> nn.Module:
    """Give every beta/gamma a non-zero value, as after training, so the blocks are not identity."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, NAFBlock):
                module.beta.normal_(0.0, 0.5)
                module.gamma.normal_(0.0, 0.5)
    return net


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 3), (1, 1)], ids=str)
@pytest.mark.parametrize("channels", [1, 3])
def test_any_size_and_channels(size: tuple[int, int], channels: int) -> None:
    net = randomise_scales_(tiny(channels, channels))
    x = torch.rand(2, channels, *size)
    assert net(x).shape == x.shape
    assert net.eval()(x).shape == x.shape


def test_stride_is_the_level_multiple() -> None:
    assert tiny().stride == 4
    assert NAFNet().stride == 8
    assert NAFNet(enc_blocks=[], dec_blocks=[], middle_blocks=1).stride == 1
    # The BGAN wrapper forwards it, so predict pads a wrapped net too.
    assert NoiseInjection(tiny(4, 3), channels=1).stride == 4


def test_internal_padding_is_invisible_on_multiples() -> None:
    # Cropping the padded result must equal running the net on the padded input and cropping.
    net = randomise_scales_(tiny()).eval()
    x = torch.rand(1, 3, 37, 53)
    padded = F.pad(x, (0, 3, 0, 3), mode="reflect")
    torch.testing.assert_close(net(x), net(padded)[..., :37, :53])


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = tiny(4, 3)
    x, target = torch.rand(2, 4, 20, 28), torch.rand(2, 3, 20, 28)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def step() -> dict[str, torch.Tensor]:
        opt.zero_grad(set_to_none=True)
        F.l1_loss(net(x), target).backward()
        grads = {name: p.grad for name, p in net.named_parameters()}
        assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
        return grads  # type: ignore[return-value]

    first = step()
    # beta = gamma = 0: the block branches get exactly zero gradient at first, everything else
    # (the scales themselves, the trunk, the tail) a non-zero one.
    in_branch = [n for n in first if "encoders" in n or "middle" in n or "decoders" in n]
    gated = [n for n in in_branch if not n.endswith(("beta", "gamma"))]
    assert gated
    assert all(first[n].abs().sum() == 0 for n in gated)
    assert all(first[n].abs().sum() > 0 for n in first if n not in gated)
    opt.step()
    second = step()
    # One step moved beta/gamma off zero: now every parameter learns.
    assert [n for n, g in second.items() if g.abs().sum() == 0] == []


def test_zeroed_tail_is_identity_and_default_init_is_near_it() -> None:
    # The 4th input channel stands for the BGAN's noise map: read, but not in the residual.
    x = torch.rand(2, 4, 24, 40)
    net = randomise_scales_(tiny(4, 3)).zero_residual_()
    torch.testing.assert_close(net(x), x[:, :3])
    torch.testing.assert_close(net.eval()(x), x[:, :3])
    torch.manual_seed(0)
    fresh = NAFNet(4, 3)
    psnr = -10 * torch.log10(F.mse_loss(fresh(x), x[:, :3]))
    assert psnr > 30, f"untrained NAFNet should be near the identity, got {psnr:.1f} dB"


def test_without_global_residual_output_is_a_sigmoid() -> None:
    y = tiny(global_residual=False)(torch.rand(1, 3, 8, 8))
    assert y.min() > 0 and y.max() < 1


@pytest.mark.parametrize("training", [True, False])
def test_keep_mean_keeps_every_channel_mean_of_the_input(training: bool) -> None:
    """As the U-Net's: deblurring moves no channel mean, so the net cannot shift tone."""
    torch.manual_seed(0)
    net = randomise_scales_(tiny(keep_mean=True)).train(training)
    with torch.no_grad():
        net.tail.weight.mul_(3)  # a residual that would move the means if allowed
    x = 0.3 + 0.4 * torch.rand(2, 3, 37, 53)  # away from 0 and 1: no clamping in eval mode
    y = net(x)
    assert (y - x).abs().mean() > 1e-3 and y.min() > 0 and y.max() < 1
    torch.testing.assert_close(y.mean((2, 3)), x.mean((2, 3)), atol=1e-6, rtol=0)
    # Off by default: weights trained before the option keep their output.
    assert not tiny().keep_mean
    with pytest.raises(ValueError, match=r"keep_mean=True: needs global_residual=true"):
        tiny(keep_mean=True, global_residual=False)


def test_bad_configs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="in_channels >= out_channels"):
        NAFNet(1, 3)
    with pytest.raises(ValueError, match="one entry per level"):
        NAFNet(enc_blocks=[1, 1], dec_blocks=[1])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        tiny()(torch.rand(3, 8, 8))


def test_inside_noise_injection() -> None:
    torch.manual_seed(0)
    g = NoiseInjection(randomise_scales_(tiny(4, 3)), channels=1, scale=0.5)
    x = torch.rand(2, 3, 37, 53)
    a, b = g(x), g(x)
    assert a.shape == x.shape
    assert not torch.equal(a, b)  # fresh noise per call reaches the output
    a.mean().backward()
    assert all(p.grad is not None for p in g.parameters())


@pytest.mark.parametrize("channels", [1, 3])
def test_predict_pads_and_tiles(channels: int) -> None:
    net = randomise_scales_(tiny(channels, channels)).eval()
    image = torch.rand(1, channels, 37, 53)
    whole = deblur_image(net, image, tile=None)
    assert whole.shape == image.shape
    # predict pads to `stride` exactly as forward would on its own.
    with torch.inference_mode():
        torch.testing.assert_close(whole, net(image))
    tiled = deblur_image(net, image, tile=16, overlap=8)
    assert tiled.shape == image.shape
    identity = tiny(channels, channels).zero_residual_().eval()
    torch.testing.assert_close(deblur_image(identity, image, tile=16, overlap=8), image)


@pytest.mark.parametrize("impl", LAYER_NORM_IMPLS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_layer_norm_matches_reference(impl: str, channels_last: bool) -> None:
    torch.manual_seed(0)
    norm = LayerNorm2d(6, impl=impl)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    ref = nn.LayerNorm(6, eps=norm.eps)
    ref.load_state_dict(norm.state_dict())
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y = norm(x)
    expected = ref(x_ref.permute(0, 2, 3, 1).contiguous()).permute(0, 3, 1, 2)
    torch.testing.assert_close(y, expected)
    grad = torch.randn_like(y)
    y.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(norm.weight.grad, ref.weight.grad)
    torch.testing.assert_close(norm.bias.grad, ref.bias.grad)


def test_channels_last_equals_contiguous() -> None:
    torch.manual_seed(0)
    net = randomise_scales_(tiny(4, 3))
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    x = torch.rand(2, 4, 24, 40)
    y = net(x)
    y_cl = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)
    y.square().mean().backward()
    y_cl.square().mean().backward()
    for (name, p), p_cl in zip(net.named_parameters(), net_cl.parameters(), strict=True):
        torch.testing.assert_close(p_cl.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_model_config_builds_and_runs() -> None:
    cfg = OmegaConf.create({"model": OmegaConf.load(CONFIG_DIR / "model" / "nafnet.yaml")})
    default = OmegaConf.load(CONFIG_DIR / "model" / "default.yaml")
    assert set(cfg.model) == set(default)  # the same nets, nothing else
    x = torch.rand(1, 3, 29, 35)
    for key in ("bgan_g", "dbgan_g"):
        net = instantiate(cfg.model[key])
        assert net.stride == 8
        assert net(x).shape == x.shape
    for key in ("bgan_d", "dbgan_d", "bgan_d_conditional"):
        assert OmegaConf.to_container(cfg.model[key]) == OmegaConf.to_container(default[key])


def test_safetensors_and_onnx_export(tmp_path: Path) -> None:
    from realblur_gan.export import ONNX_TOLERANCE, check_onnx, export_onnx, export_safetensors

    torch.manual_seed(0)
    net = randomise_scales_(tiny()).eval()
    config = {"_target_": "realblur_gan.nets.NAFNet", "in_channels": 3, "out_channels": 3}
    config |= {"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]}
    weights, _ = export_safetensors(net, config, tmp_path, "dbgan_g")
    x = torch.rand(1, 3, 20, 28)
    torch.testing.assert_close(load_generator(weights)(x), net(x))
    path = export_onnx(net, tmp_path / "g.onnx")
    assert check_onnx(net, path, [(32, 48), (20, 60)]) < ONNX_TOLERANCE


# --------------------------------------------------------------------------------------------------
# Local context pooling (sca_window): a training crop's statistics on whole photos
# --------------------------------------------------------------------------------------------------


def _crop_mean_by_hand(x: torch.Tensor, window: int) -> torch.Tensor:
    """Each pixel's mean over the window-sided square around it, moved inside the image."""
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    wh, ww = min(window, h), min(window, w)
    for r in range(h):
        for c in range(w):
            r0 = min(max(r - window // 2, 0), h - wh)
            c0 = min(max(c - window // 2, 0), w - ww)
            out[..., r, c] = x[..., r0 : r0 + wh, c0 : c0 + ww].mean(dim=(-2, -1))
    return out


@pytest.mark.parametrize("window", [1, 4, 7, 30])
def test_context_pool_is_the_mean_of_a_window_inside_the_image(window: int) -> None:
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    got = ContextPool(window)(x)
    torch.testing.assert_close(got.expand_as(x), _crop_mean_by_hand(x, window))


def test_context_pool_on_a_map_no_larger_than_the_window_is_the_global_mean() -> None:
    x = torch.rand(1, 4, 12, 16)
    global_mean = x.mean(dim=(-2, -1), keepdim=True)
    assert torch.equal(ContextPool(None)(x), global_mean)
    assert torch.equal(ContextPool(16)(x), global_mean)
    assert ContextPool(8)(x).shape == x.shape
    with pytest.raises(ValueError, match="window"):
        ContextPool(0)


def test_sca_window_halves_per_level_and_can_be_set_on_a_trained_net() -> None:
    net = NAFNet(width=4, enc_blocks=[1, 1, 1], middle_blocks=1, dec_blocks=[1, 1, 1])

    def windows() -> list[list[int | None]]:
        stacks = (*net.encoders, net.middle, *net.decoders)
        return [[block.sca[0].window for block in blocks] for blocks in stacks]

    assert net.sca_window is None and net.traceable
    assert windows() == [[None]] * 7
    net.sca_window = 256
    # Encoder levels 0-2, the middle at 1/8, the decoders from the deepest level up.
    assert windows() == [[256], [128], [64], [32], [64], [128], [256]]
    assert not net.traceable
    assert NAFNet(sca_window=100).encoders[1][0].sca[0].window == 50
    with pytest.raises(ValueError, match="sca_window"):
        net.sca_window = -1


def test_sca_window_changes_nothing_on_crops_and_localises_whole_photos() -> None:
    torch.manual_seed(0)
    # No keep_mean here: its mean over the whole output is global by design.
    net = randomise_scales_(tiny()).eval()
    crop = torch.rand(1, 3, 32, 32)
    photo = torch.rand(1, 3, 64, 96)
    before = net(crop), net(photo), net.train()(crop)
    net.sca_window = 32
    # The crop the net trains on: the same numbers, in training and in eval mode.
    torch.testing.assert_close(net(crop), before[2], rtol=0, atol=0)
    torch.testing.assert_close(net.eval()(crop), before[0], rtol=0, atol=0)
    # A larger photo: each pixel's attention reads a crop around it, not the whole photo.
    assert (net(photo) - before[1]).abs().max() > 1e-3
    # Local context means local effect: a change far away leaves this corner's output alone.
    far = photo.clone()
    far[..., 40:, 60:] = torch.rand(1, 3, 24, 36)
    corner = (slice(None), slice(None), slice(0, 8), slice(0, 8))
    assert (net(far)[corner] - net(photo)[corner]).abs().max() < 1e-6
    net.sca_window = None
    assert (net(far)[corner] - net(photo)[corner]).abs().max() > 1e-6


def test_a_local_sca_window_runs_in_torch_and_is_not_traced() -> None:
    from realblur_gan.inference.onnx import onnx_model_bytes
    from realblur_gan.inference.runtime import RuntimeUnavailable

    torch.manual_seed(0)
    net = randomise_scales_(tiny()).eval()
    net.sca_window = 16
    photo = torch.rand(1, 3, 40, 72)
    with torch.no_grad():
        expected = net(photo).clamp(0, 1)
    torch.testing.assert_close(deblur_image(net, photo, tile=None), expected)
    with pytest.raises(ValueError, match="sca_window null"):
        onnx_model_bytes(net)
    with pytest.raises(RuntimeUnavailable, match="--runtime torch"):
        deblur_image(net, photo, tile=None, runtime="onnxruntime")
