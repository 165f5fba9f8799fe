"""Inference on one image: any size through pad-to-stride and crop, tiles, gray through RGB."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from realblur_gan.inference.tiling import SELF_ENSEMBLE, _flip, _unflip, deblur_image
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


# --------------------------------------------------------------------------------------------------
# Self-ensemble: the net on the eight flips and transposes, each mapped back, averaged
# --------------------------------------------------------------------------------------------------


def test_the_eight_symmetries_are_distinct_and_each_undone() -> None:
    x = torch.rand(1, 2, 5, 7)
    seen = set()
    for symmetry in SELF_ENSEMBLE:
        moved = _flip(x, *symmetry)
        assert torch.equal(_unflip(moved, *symmetry), x)
        seen.add(moved.contiguous().numpy().tobytes())
    assert len(SELF_ENSEMBLE) == 8 and len(seen) == 8 and SELF_ENSEMBLE[0] == (False,) * 3


def test_self_ensemble_is_the_mean_of_eight_mapped_back_passes(tiny_net: nn.Module) -> None:
    # Non-square and tiled: a transposed pass sees a 53 x 37 image with its own tile grid.
    x = torch.rand(1, 3, 37, 53)
    passes = [
        _unflip(deblur_image(tiny_net, _flip(x, *s), tile=32, overlap=8), *s) for s in SELF_ENSEMBLE
    ]
    ensembled = deblur_image(tiny_net, x, tile=32, overlap=8, self_ensemble=True)
    assert ensembled.shape == x.shape
    torch.testing.assert_close(ensembled, torch.stack(passes).mean(0), atol=1e-6, rtol=0)
    assert float((ensembled - passes[0]).abs().max()) > 1e-3  # a random net is not symmetric


def test_self_ensemble_leaves_a_symmetric_net_alone() -> None:
    identity = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    gray = torch.rand(1, 1, 20, 30)
    assert torch.allclose(deblur_image(identity, gray, self_ensemble=True), gray, atol=1e-6)


def test_self_ensemble_cancels_an_orientation_bias() -> None:
    # A net that shifts its input one pixel right; the mapped-back passes shift it right, left,
    # down and up, twice each: their mean is the 4-neighbour average, on a ramp the ramp itself.
    class ShiftRight(nn.Module):
        image_channels = 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.roll(x, 1, dims=-1)

    ramp = torch.arange(16.0).div(15).expand(1, 1, 16, 16).clone()
    single = deblur_image(ShiftRight(), ramp, tile=None)
    ensembled = deblur_image(ShiftRight(), ramp, tile=None, self_ensemble=True)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert torch.allclose(single[inner], ramp[inner] - 1 / 15)
    assert torch.allclose(ensembled[inner], ramp[inner], atol=1e-6)
