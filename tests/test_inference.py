"""Inference on one image: any size through pad-to-stride and crop, tiles, gray through RGB."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from realblur_gan.inference import deblur_image
from realblur_gan.nets import ResNetGenerator, UNet
from realblur_gan.nets.padding import pad_to_multiple


def test_pad_to_multiple_pads_bottom_right_only() -> None:
    # Validation pads with it too: the image stays at the origin, so [..., :h, :w] crops back.
    x = torch.rand(2, 3, 5, 7)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded[..., :5, :7], x)
    assert torch.equal(padded[..., 5, :7], x[..., 3, :])  # reflected, not zeros
    assert pad_to_multiple(x, 1) is x
    tiny = torch.rand(1, 1, 1, 2)  # too small to reflect: replicated
    assert torch.equal(pad_to_multiple(tiny, 4)[..., 3, :2], tiny[..., 0, :])


@pytest.mark.parametrize("size", [(37, 53), (1, 5), (16, 16)])
def test_any_size_comes_back_the_same_size(tiny_net: nn.Module, size: tuple[int, int]) -> None:
    out = deblur_image(tiny_net, torch.rand(1, 3, *size), tile=None, overlap=0)
    assert out.shape == (1, 3, *size)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_tiled_equals_untiled_when_receptive_field_fits_the_overlap() -> None:
    # 7 3x3 convs: receptive-field radius 7 <= overlap // 4 = 8, so tiles are exact.
    torch.manual_seed(0)
    net = ResNetGenerator(3, 3, width=4, n_blocks=1).eval()
    x = torch.rand(1, 3, 101, 157)
    whole = deblur_image(net, x, tile=None, overlap=0)
    tiled = deblur_image(net, x, tile=64, overlap=32)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_tiled_unet_is_close_to_untiled(tiny_net: nn.Module) -> None:
    # A U-Net sees further than the overlap: tiles differ slightly near the seams.
    x = torch.rand(1, 3, 101, 157)
    whole = deblur_image(tiny_net, x, tile=None, overlap=0)
    tiled = deblur_image(tiny_net, x, tile=64, overlap=32)
    diff = (tiled - whole).abs()
    assert float(diff.max()) < 5e-3 and float(diff.mean()) < 2e-4


def test_gray_through_a_colour_net(tiny_net: nn.Module) -> None:
    gray = torch.rand(1, 1, 20, 24)
    out = deblur_image(tiny_net, gray, tile=None, overlap=0)
    assert out.shape == gray.shape
    identity = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    assert torch.allclose(deblur_image(identity, gray, tile=16, overlap=8), gray, atol=1e-6)


def test_bad_overlap_is_refused(tiny_net: nn.Module) -> None:
    with pytest.raises(ValueError, match="overlap"):
        deblur_image(tiny_net, torch.rand(1, 3, 64, 64), tile=32, overlap=24)
