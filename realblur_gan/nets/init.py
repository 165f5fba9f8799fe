"""Construction helpers shared by the networks: weight init, norm layers, size checks, output head.

Every net calls :func:`init_weights` at the end of its constructor so that a net built from a
Hydra config is initialised the same way as one built in a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from realblur_gan.errors import ArgumentError

NORMS = ("none", "batch", "instance")
INITS = ("normal", "kaiming")


def init_weights(net: nn.Module, std: float = 0.02, scheme: str = "normal") -> nn.Module:
    """Initialise a network in place.

    ``"normal"`` is the pix2pix way: conv/linear weights from N(0, std), biases zero, norm
    scales from N(1, std). It relies on normalisation layers to restore the signal scale; in a
    deep net WITHOUT norm layers N(0, 0.02) shrinks activations ~3x per layer, so the body
    starts (and long stays) dead. ``"kaiming"`` (He init for LeakyReLU(0.2), fan-in) keeps the
    scale through any depth and is what un-normalised generators should use.

    Args:
        net: the network to initialise (modified in place).
        std: standard deviation for ``"normal"``.
        scheme: ``"normal"`` or ``"kaiming"``.

    Returns:
        The same network, for chaining.
    """
    if scheme not in INITS:
        raise ArgumentError("scheme", scheme, f"must be one of {INITS}")
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
            else:
                nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d | nn.InstanceNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)
    return net


def generator_init(
    net: nn.Module, norm: str, tail: nn.Conv2d, init: str = "auto", tail_scale: float = 0.01
) -> None:
    """Initialise a generator: ``auto`` picks pix2pix's N(0, 0.02) with norm layers, He init
    without; the output conv is then scaled by ``tail_scale`` so that a residual generator
    starts near the identity (with He init, 0.1 still leaves a residual that costs a restoration
    net several dB at step 0; 0.01 starts within a fraction of a dB of its input).
    """
    if init not in ("auto", *INITS):
        raise ArgumentError("init", init, f"must be one of {('auto', *INITS)}")
    scheme = ("normal" if norm != "none" else "kaiming") if init == "auto" else init
    init_weights(net, scheme=scheme)
    if scheme == "kaiming":
        with torch.no_grad():
            tail.weight.mul_(tail_scale)


class ResidualGenerator(nn.Module):
    """Base of generators ending in a ``tail`` conv whose output is added to the input."""

    tail: nn.Conv2d

    def zero_residual_(self) -> ResidualGenerator:
        """Zero the last conv so that, with a global residual, the net starts as the identity.

        Returns:
            ``self``, for chaining.
        """
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        return self


def make_norm(norm: str, channels: int) -> nn.Module:
    """Build a 2-D normalisation layer from a small literal switch.

    Args:
        norm: ``"none"``, ``"batch"`` or ``"instance"``.
        channels: number of feature channels.

    Returns:
        The norm layer (``nn.Identity`` for ``"none"``).
    """
    if norm == "none":
        return nn.Identity()
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        # Affine so that the layer can learn to undo the normalisation where it hurts.
        return nn.InstanceNorm2d(channels, affine=True)
    raise ArgumentError("norm", norm, f"must be one of {NORMS}")


def check_residual_channels(global_residual: bool, in_channels: int, out_channels: int) -> None:
    """Refuse a global residual that has fewer input channels than output channels to add to.

    Raises:
        ArgumentError: named after ``global_residual``, the switch that needs the channels.
    """
    if global_residual and in_channels < out_channels:
        raise ArgumentError(
            "global_residual",
            global_residual,
            f"needs in_channels >= out_channels, got {in_channels} < {out_channels}",
        )


def build_inner(factory: Callable[..., nn.Module], name: str, **kwargs: Any) -> nn.Module:
    """Build a net that another net wraps, from its factory (a Hydra ``_partial_`` node).

    The factory's argument errors get the wrapper's argument as prefix (``net.depth``, not
    ``depth``), so the config key a training error names is the inner net's own.

    Args:
        factory: Builds the inner net.
        name: The wrapper's argument that holds ``factory`` (``net``, ``scale_net``).
        **kwargs: What the wrapper decides for the inner net (its channels).

    Returns:
        The inner net.
    """
    try:
        return factory(**kwargs)
    except ArgumentError as err:
        raise ArgumentError(f"{name}.{err.argument}", err.value, err.allowed) from err


def check_multiple(x: Tensor, stride: int, name: str) -> None:
    """Raise a clear error when the spatial size of ``x`` is not a multiple of ``stride``.

    Args:
        x: image batch.
        stride: the multiple that H and W must be.
        name: network name used in the message.

    Shape:
        - x: :math:`(B, C, H, W)`
    """
    if x.ndim != 4:
        raise ValueError(f"{name} expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % stride or w % stride:
        raise ValueError(
            f"{name} needs H and W to be multiples of {stride}, got {h}x{w}; "
            "pad the input to a multiple (realblur_gan.inference.tiling pads and crops for you)"
        )


def residual_output(
    x: Tensor, residual: Tensor, global_residual: bool, training: bool, keep_mean: bool = False
) -> Tensor:
    """Turn a generator body's last activation into a [0, 1]-range image.

    With a global residual the output is ``x[:, :C_out] + residual``: the body only learns the
    difference between blurry and sharp, which starts training near the identity. The sum is
    clamped to [0, 1] only in eval mode, because a hard clamp during training would zero the
    gradient of every pixel that overshoots. Without a global residual the body's output goes
    through a sigmoid (pix2pix's ``tanh`` rescaled to [0, 1]).

    With ``keep_mean`` each channel's residual has its mean over the image removed, so the
    output keeps the input's channel means: a blur kernel sums to one and leaves them as they
    were, so deblurring must not move them either (no tone or colour shift, by construction).

    Args:
        x: the generator input (image channels first, extra channels such as noise last).
        residual: the body's last activation.
        global_residual: add the input image or not.
        training: the calling module's ``training`` flag.
        keep_mean: remove the residual's per-channel mean (global residual only).

    Returns:
        The generated image.

    Shape:
        - x: :math:`(B, C_{in}, H, W)` with :math:`C_{in} \\ge C_{out}`
        - residual: :math:`(B, C_{out}, H, W)`
        - output: :math:`(B, C_{out}, H, W)`
    """
    if not global_residual:
        return torch.sigmoid(residual)
    if keep_mean:
        residual = residual - residual.mean(dim=(2, 3), keepdim=True)
    out = x[:, : residual.shape[1]] + residual
    return out if training else out.clamp(0.0, 1.0)


def net_channels(net: nn.Module) -> int:
    """The image channels ``net`` maps: its ``image_channels`` attribute, else its first conv's.

    Args:
        net: a generator.
    """
    channels = getattr(net, "image_channels", None)
    if isinstance(channels, int):
        return channels
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"cannot tell the input channels of {type(net).__name__}; set image_channels")
