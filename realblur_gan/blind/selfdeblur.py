"""SelfDeblur (Ren et al., *Neural Blind Deconvolution Using Deep Priors*, CVPR 2020).

Two generators are fitted to one blurry image ``y``, with no training set:

- ``Gx``, a skip encoder-decoder fed a fixed noise image, predicts the latent sharp image (a
  sigmoid output, ``k - 1`` px larger than ``y``); its convolutional structure is the image
  prior (the "deep image prior"), since it fits natural structure long before noise;
- ``Gk``, a small fully connected net fed a fixed noise vector, predicts the kernel through a
  softmax, so it is non-negative and sums to 1 by construction.

Both are trained by Adam (per-net learning rates, halved at fixed fractions of the budget) to
make ``Gk() * Gx()`` reproduce ``y``: with a mean squared error first, then with ``1 - SSIM``,
which keeps edges sharp once the coarse solution is in place. Colour images are deblurred on
luma and keep their chroma, as in the paper.

The paper's nets (128 channels at every scale) and 5000 iterations take hours on a CPU; the
defaults here are slimmer nets and a shorter budget (see :class:`SelfDeblurOptions`). Several
same-size images run as one batch: every layer is a grouped convolution (one group per image)
and every image has its own kernel net, so the images are optimised independently, each from
the initialisation a single run with the same seed would use.

Example::

    result = selfdeblur(blurry, kernel_size=31, iterations=600)
    result.restored, result.kernels
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realblur_gan.blind.common import (
    BlindError,
    BlindResult,
    check_kernel_size,
    crop_restored,
    deterministic,
    iteration_bar,
    merge_luma,
    split_luma,
    ssim_valid,
)
from realblur_gan.camera import valid_convolve
from realblur_gan.defaults import SELFDEBLUR_ITERATIONS

logger = logging.getLogger(__name__)

__all__ = ["ImageNet", "KernelNet", "SelfDeblurOptions", "selfdeblur"]


@dataclass(frozen=True)
class SelfDeblurOptions:
    """Knobs of :func:`selfdeblur`.

    The paper's settings are ``channels=(128,) * 5``, ``skip=(16,) * 5``, 5000 iterations,
    ``lr_image=0.01``, ``lr_kernel=1e-4``, MSE for the first 1000 steps and halving the rates at
    steps 2000, 3000 and 4000. The defaults shrink the nets for CPU budgets (about 3x faster,
    and no worse at 600 steps on 255 px images), raise the kernel net's rate to 5e-4 (with 600
    steps instead of 5000 the kernel must leave its flat start sooner: +1 to +3 dB measured),
    and express the schedule as fractions of whatever budget is given.

    Attributes:
        channels: encoder/decoder width at each of the image net's scales (full res first).
        skip: width of the skip connection at each scale (0 drops it).
        noise_channels: channels of the image net's fixed noise input.
        kernel_noise: length of the kernel net's fixed noise input.
        kernel_hidden: width of the kernel net's hidden layer.
        lr_image: Adam learning rate of the image net.
        lr_kernel: Adam learning rate of the kernel net.
        mse_share: share of the budget fitted with MSE before switching to ``1 - SSIM``.
        milestones: budget fractions where both learning rates are halved.
        input_jitter: std of the fresh noise added to the image net's input at every step
            (a regulariser from the deep-image-prior recipe).
    """

    channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    skip: tuple[int, ...] = (4, 4, 4, 4, 4)
    noise_channels: int = 8
    kernel_noise: int = 200
    kernel_hidden: int = 1000
    lr_image: float = 0.01
    lr_kernel: float = 5e-4
    mse_share: float = 0.2
    milestones: tuple[float, ...] = (0.4, 0.6, 0.8)
    input_jitter: float = 1e-3

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.skip) or not self.channels:
            raise BlindError("channels and skip need one entry per scale")
        if not 0.0 <= self.mse_share <= 1.0:
            raise BlindError(f"mse_share must be in [0, 1], got {self.mse_share}")


# --------------------------------------------------------------------------------------------------
# Nets: one independent copy per image, as grouped layers
# --------------------------------------------------------------------------------------------------


def _uniform_(param: Tensor, bound: float, copies: int, generator: torch.Generator) -> None:
    """Fill ``copies`` stacked copies of one parameter with the same U(-bound, bound) draw.

    The draw is made for a single copy, so image ``i`` of a batch starts exactly where a run on
    that image alone (same seed) starts.
    """
    shape = (param.shape[0] // copies, *param.shape[1:])
    draw = (torch.rand(shape, generator=generator, dtype=param.dtype) * 2 - 1) * bound
    with torch.no_grad():
        param.copy_(draw.repeat(copies, *([1] * (param.ndim - 1))))


class _Conv(nn.Sequential):
    """Grouped conv (one group per image) + batch norm + leaky ReLU.

    Folding the images into channels makes batch norm's statistics per image and per channel,
    the statistics a batch of one has in the paper's setting.
    """

    def __init__(
        self, c_in: int, c_out: int, size: int, copies: int, stride: int = 1, act: bool = True
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                c_in * copies, c_out * copies, size, stride, padding=size // 2, groups=copies
            ),
            nn.BatchNorm2d(c_out * copies),
        ]
        if act:
            layers.append(nn.LeakyReLU(0.2))
        super().__init__(*layers)


def _cat_groups(a: Tensor, b: Tensor, copies: int) -> Tensor:
    """Concatenate channels image by image, keeping each image's channels contiguous."""
    n, _, h, w = a.shape
    return torch.cat([a.view(n, copies, -1, h, w), b.view(n, copies, -1, h, w)], 2).flatten(1, 2)


class _Level(nn.Module):
    """One scale of the skip encoder-decoder: down, (deeper scales), up, merge with the skip."""

    def __init__(
        self, c_in: int, channels: tuple[int, ...], skip: tuple[int, ...], copies: int
    ) -> None:
        super().__init__()
        c, s = channels[0], skip[0]
        self.copies = copies
        self.skip = _Conv(c_in, s, 1, copies) if s else None
        self.down = nn.Sequential(_Conv(c_in, c, 3, copies, stride=2), _Conv(c, c, 3, copies))
        self.deeper = _Level(c, channels[1:], skip[1:], copies) if len(channels) > 1 else None
        c_up = channels[1] if len(channels) > 1 else c
        self.merge_norm = nn.BatchNorm2d((s + c_up) * copies)
        self.up = nn.Sequential(_Conv(s + c_up, c, 3, copies), _Conv(c, c, 1, copies))

    def forward(self, x: Tensor) -> Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        # Nearest upsampling straight to the skip's size: any input size works (no multiple of
        # 2^depth needed), and its CUDA backward is deterministic, unlike bilinear's.
        y = F.interpolate(y, size=x.shape[-2:], mode="nearest")
        if self.skip is not None:
            y = _cat_groups(self.skip(x), y, self.copies)
        return self.up(self.merge_norm(y))


def _depth(size: tuple[int, int], most: int, smallest: int = 8) -> int:
    """Scales the image net gets: down to maps of at least ``smallest`` px, at most ``most``.

    Batch norm over a 3x3 map (what five halvings leave of a 76 px image) is mostly noise.
    """
    depth, side = 0, min(size)
    while depth < most and side // 2 >= smallest:
        depth, side = depth + 1, (side + 1) // 2
    return max(depth, 1)


class ImageNet(nn.Module):
    """``Gx``: the skip encoder-decoder, ``copies`` independent nets run as one.

    Zero padding (not reflection) keeps the CUDA backward deterministic; the latent image is
    ``k - 1`` px larger than the blurry one, so its border is not scored tightly anyway. Small
    images get fewer scales (see :func:`_depth`), so no feature map is smaller than 8 px.

    Shape:
        - input: :math:`(1, \\text{copies} \\cdot \\text{noise\\_channels}, H, W)`
        - output: :math:`(\\text{copies}, 1, H, W)` in (0, 1)
    """

    def __init__(self, options: SelfDeblurOptions, copies: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.copies = copies
        depth = _depth(size, len(options.channels))
        channels, skip = options.channels[:depth], options.skip[:depth]
        self.body = _Level(options.noise_channels, channels, skip, copies)
        self.head = nn.Conv2d(options.channels[0] * copies, copies, 1, groups=copies)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default init (U(±1/sqrt(fan_in))), the same draw for every copy."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                _uniform_(module.weight, bound, self.copies, generator)
                if module.bias is not None:
                    _uniform_(module.bias, bound, self.copies, generator)

    def forward(self, noise: Tensor) -> Tensor:
        out = torch.sigmoid(self.head(self.body(noise)))
        return out.view(self.copies, 1, *out.shape[-2:])


class KernelNet(nn.Module):
    """``Gk``: noise -> Linear -> ReLU6 -> Linear -> softmax, one independent net per image.

    Shape:
        - input: :math:`(\\text{copies}, \\text{kernel\\_noise})`
        - output: :math:`(\\text{copies}, k, k)`, non-negative, each summing to 1
    """

    def __init__(self, options: SelfDeblurOptions, kernel_size: int, copies: int) -> None:
        super().__init__()
        n, hidden, out = options.kernel_noise, options.kernel_hidden, kernel_size**2
        self.kernel_size = kernel_size
        self.copies = copies
        self.w1 = nn.Parameter(torch.empty(copies, n, hidden))
        self.b1 = nn.Parameter(torch.empty(copies, 1, hidden))
        self.w2 = nn.Parameter(torch.empty(copies, hidden, out))
        self.b2 = nn.Parameter(torch.empty(copies, 1, out))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """``nn.Linear``'s default init, the same draw for every copy."""
        for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(w.shape[1])
            _uniform_(w, bound, self.copies, generator)
            _uniform_(b, bound, self.copies, generator)

    def forward(self, noise: Tensor) -> Tensor:
        hidden = F.relu6(torch.baddbmm(self.b1, noise[:, None], self.w1))
        logits = torch.baddbmm(self.b2, hidden, self.w2)[:, 0]
        k = self.kernel_size
        return torch.softmax(logits, dim=-1).view(self.copies, k, k)


# --------------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------------


def selfdeblur(
    images: Tensor,
    kernel_size: int = 31,
    iterations: int = SELFDEBLUR_ITERATIONS,
    options: SelfDeblurOptions | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    names: list[str] | None = None,
    progress: bool = False,
) -> BlindResult:
    """SelfDeblur a batch of same-size images, each with its own pair of nets.

    Args:
        images: blurry images in [0, 1], gray or RGB (deblurred on luma, chroma kept).
        kernel_size: side of the estimated kernel (odd, smaller than the image), a little
            larger than the blur's extent.
        iterations: Adam steps (the paper uses 5000).
        options: see :class:`SelfDeblurOptions`.
        seed: seeds the nets' weights, their noise inputs and the input jitter; each image of
            a batch starts from the same draw, so its result does not depend on the batch.
        device: where to optimise; None keeps the images' device.
        names: image names for the progress bar.
        progress: show a progress bar.

    Returns:
        Restored images and estimated kernels (on the images' original device).

    Shape:
        - images: :math:`(B, C, H, W)`, C in {1, 3}
        - restored: :math:`(B, C, H, W)`; kernels: :math:`(B, k, k)`
    """
    options = options or SelfDeblurOptions()
    start = time.perf_counter()
    if iterations < 1:
        raise BlindError(f"iterations must be >= 1, got {iterations}")
    home = images.device
    device = torch.device(device) if device is not None else home
    y, chroma = split_luma(images.to(device=device, dtype=torch.float32))
    b, _, h, w = y.shape
    k = check_kernel_size(kernel_size, h, w, names[0] if names and b == 1 else "image")
    latent_size = (h + k - 1, w + k - 1)

    # Everything random is drawn on the CPU from one generator, then moved: the same seed gives
    # the same start on any device.
    gen = torch.Generator().manual_seed(seed)
    image_net = ImageNet(options, b, latent_size)
    kernel_net = KernelNet(options, k, b)
    image_net.reset_parameters(gen)
    kernel_net.reset_parameters(gen)
    noise = torch.rand(1, options.noise_channels, *latent_size, generator=gen) * 0.1
    kernel_noise = torch.rand(1, options.kernel_noise, generator=gen) * 0.1
    image_net.to(device)
    kernel_net.to(device)
    noise = noise.repeat(1, b, 1, 1).to(device)
    kernel_noise = kernel_noise.repeat(b, 1).to(device)

    optimizer = torch.optim.Adam(
        [
            {"params": image_net.parameters(), "lr": options.lr_image},
            {"params": kernel_net.parameters(), "lr": options.lr_kernel},
        ]
    )
    milestones = sorted({max(1, round(f * iterations)) for f in options.milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.5)
    mse_steps = round(options.mse_share * iterations)

    with deterministic(device), iteration_bar(iterations, names, progress) as bar:
        for step in range(iterations):
            optimizer.zero_grad(set_to_none=True)
            net_input = noise
            if options.input_jitter:
                jitter = torch.randn(1, options.noise_channels, *latent_size, generator=gen)
                net_input = noise + options.input_jitter * jitter.repeat(1, b, 1, 1).to(device)
            blurred = valid_convolve(image_net(net_input), kernel_net(kernel_noise))
            if step < mse_steps:
                per_image = (blurred - y).square().flatten(1).mean(1)
            else:
                per_image = 1.0 - ssim_valid(blurred, y)
            # Summed: each image owns its nets, so its gradient is what it would be alone.
            per_image.sum().backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            if step % 100 == 0:
                logger.debug("step %d loss %s", step, per_image.detach().cpu().tolist())

        # The nets stay in training mode for the final read-out, as in the paper: batch norm
        # on the image's own statistics is the function that was fitted.
        with torch.no_grad():
            latent = image_net(noise)
            kernels = kernel_net(kernel_noise)
    restored, kernels = crop_restored(latent, kernels)
    out = merge_luma(restored, chroma)
    return BlindResult(out.to(home), kernels.to(home), time.perf_counter() - start)
