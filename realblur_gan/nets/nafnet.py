"""NAFNet generator (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

A U-shaped net of :class:`NAFBlock` s: stride-2 2x2 conv downsampling that doubles the channels,
1x1 conv + PixelShuffle upsampling that halves them, additive (not concatenated) skips and a
global residual. The blocks have no activation functions at all: the only nonlinearity is
:class:`SimpleGate` (half the channels times the other half), and channel attention is a pooled
1x1 conv used as a multiplier. Written from the paper's description.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from realblur_gan.errors import ArgumentError
from realblur_gan.nets.init import (
    ResidualGenerator,
    check_residual_channels,
    residual_output,
)
from realblur_gan.nets.padding import pad_to_multiple

LAYER_NORM_IMPLS = ("layer_norm", "mean_var")


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of an NCHW tensor, with per-channel affine.

    Two equivalent implementations, picked by ``impl``:

    - ``"layer_norm"``: ``F.layer_norm`` on the channels-last view (``permute(0, 2, 3, 1)``), one
      fused kernel forward and backward. For a ``channels_last`` tensor the view is contiguous
      and nothing is copied; an NCHW tensor is copied into that layout first.
    - ``"mean_var"``: mean and variance over ``dim=1`` of the NCHW tensor with elementwise ops,
      about six autograd nodes each saving a full-size tensor.

    ``layer_norm`` is the default: in ``scripts/bench_nafnet.py`` (2-core CPU, batch 4) the
    whole net's forward+backward was 1.1-1.2x faster with it on NCHW tensors and 1.2-1.5x on
    ``channels_last`` ones, where its view needs no copy; and under bf16 autocast it computes
    its statistics in float32, where ``mean_var`` would not.

    Args:
        channels: feature channels C.
        eps: added to the variance.
        impl: ``"layer_norm"`` or ``"mean_var"``.

    Shape:
        - Input: :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`
    """

    def __init__(self, channels: int, eps: float = 1e-6, impl: str = "layer_norm") -> None:
        super().__init__()
        if impl not in LAYER_NORM_IMPLS:
            raise ArgumentError("impl", impl, f"must be one of {LAYER_NORM_IMPLS}")
        # A Python int, not x.shape[1]: ONNX export needs a constant normalized shape.
        self.channels = channels
        self.eps = eps
        self.impl = impl
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.impl == "layer_norm":
            y = F.layer_norm(
                x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps
            )
            return y.permute(0, 3, 1, 2)
        # Two mean passes: torch.var_mean over dim=1 is 2-4x slower on the CPU (measured).
        centered = x - x.mean(dim=1, keepdim=True)
        var = centered.square().mean(dim=1, keepdim=True)
        y = centered * torch.rsqrt(var + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}, impl={self.impl!r}"


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: NAFNet's only nonlinearity.

    Shape:
        - Input: :math:`(B, 2C, H, W)`
        - Output: :math:`(B, C, H, W)`
    """

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class ContextPool(nn.Module):
    """The pooled context of NAFNet's channel attention: a global mean, or a crop's.

    NAFNet trains on crops, where the attention's global average pool sees a whole crop, and
    then deblurs whole photos, where the same pool averages over far more, other content: the
    statistics the attention learned to read are not the ones it gets. With a ``window``, each
    pixel gets instead the mean of the ``window x window`` square around it, shifted inward at
    the borders so that it stays inside the image: the statistic of a training-sized crop that
    holds the pixel (the test-time local converter of Chu et al., "Improving Image Restoration
    by Revisiting Global Information Aggregation", ECCV 2022). Along a side no longer than the
    window the mean spans that whole side, so on training crops no larger than the window the
    result is the global mean, exactly.

    The local path has size-dependent branches, so a net that uses it is not traced to ONNX
    (``traceable`` is False; the forward runner keeps such nets in torch).

    Args:
        window: side of the averaging square in this feature map's pixels, or None for the
            global mean.

    Shape:
        - Input: :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`, but of length 1 along every side no longer than the
          window (:math:`(B, C, 1, 1)` for the global mean)
    """

    def __init__(self, window: int | None = None) -> None:
        super().__init__()
        if window is not None and (isinstance(window, bool) or int(window) < 1):
            raise ArgumentError("window", window, "must be a positive number of pixels or null")
        self.window = None if window is None else int(window)

    def forward(self, x: Tensor) -> Tensor:
        if self.window is None or (x.shape[-2] <= self.window and x.shape[-1] <= self.window):
            # The pool NAFNet always had: bit for bit what nets trained before compute.
            return F.adaptive_avg_pool2d(x, 1)
        return _shifted_box_mean(_shifted_box_mean(x, self.window, -2), self.window, -1)

    def extra_repr(self) -> str:
        return f"window={self.window}"


def _shifted_box_mean(x: Tensor, window: int, dim: int) -> Tensor:
    """Mean over ``window`` consecutive entries along ``dim`` around each one, the run shifted
    inward at the ends; over the whole side when it is no longer than ``window``.

    A running sum in float64 (over a 1280-pixel row the difference of two float32 sums loses
    the digits that matter), the means of every complete run, then the first and last
    replicated outward: entry i gets the run starting at ``clamp(i - window // 2, 0, n -
    window)``.

    Shape:
        - x: any; ``dim`` of length n
        - output: as x, in x's dtype (length 1 along ``dim`` when ``n <= window``)
    """
    n = x.shape[dim]
    if n <= window:
        return x.mean(dim=dim, keepdim=True)
    table = F.pad(x.double().movedim(dim, -1).cumsum(-1), (1, 0))
    runs = (table[..., window:] - table[..., :-window]) / window  # n - window + 1 runs
    before = window // 2
    after = n - runs.shape[-1] - before
    means = torch.cat(
        [
            runs[..., :1].expand(*runs.shape[:-1], before),
            runs,
            runs[..., -1:].expand(*runs.shape[:-1], after),
        ],
        dim=-1,
    )
    return means.movedim(-1, dim).to(x.dtype)


class NAFBlock(nn.Module):
    """NAFNet's block: a gated depthwise-conv mixer and a gated 1x1 FFN, each a scaled residual.

    ``x = x + beta * conv(SCA(SG(dwconv(conv(LN(x))))))``, then
    ``x = x + gamma * conv(SG(conv(LN(x))))``, where SG is :class:`SimpleGate` and SCA the
    simplified channel attention (global average pool -> 1x1 conv -> multiply). ``beta`` and
    ``gamma`` are per-channel and start at 0, so a fresh block is the identity and a deep stack
    trains as stably as a shallow one.

    Args:
        channels: feature channels C.
        dw_expand: expansion of the 1x1 conv in front of the depthwise conv (SG halves it).
        ffn_expand: expansion of the FFN's first 1x1 conv (SG halves it).
        norm_impl: :class:`LayerNorm2d` implementation.
        sca_window: the channel attention's pooling window in this block's pixels
            (:class:`ContextPool`); None pools globally.

    Shape:
        - Input: :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`
    """

    def __init__(
        self,
        channels: int,
        dw_expand: int = 2,
        ffn_expand: int = 2,
        norm_impl: str = "layer_norm",
        sca_window: int | None = None,
    ) -> None:
        super().__init__()
        dw = channels * dw_expand
        ffn = channels * ffn_expand
        for name, expand in (("dw_expand", dw_expand), ("ffn_expand", ffn_expand)):
            if channels * expand % 2:
                raise ArgumentError(
                    name, expand, f"SimpleGate halves channels: {channels} * {name} must be even"
                )
        self.norm1 = LayerNorm2d(channels, impl=norm_impl)
        self.expand = nn.Conv2d(channels, dw, 1)
        self.dwconv = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(ContextPool(sca_window), nn.Conv2d(dw // 2, dw // 2, 1))
        self.project = nn.Conv2d(dw // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels, impl=norm_impl)
        self.ffn_expand = nn.Conv2d(channels, ffn, 1)
        self.ffn_project = nn.Conv2d(ffn // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        y = self.gate(self.dwconv(self.expand(self.norm1(x))))
        y = self.project(y * self.sca(y))
        x = x + self.beta * y
        y = self.ffn_project(self.gate(self.ffn_expand(self.norm2(x))))
        return x + self.gamma * y


class NAFNet(ResidualGenerator):
    """NAFNet: a U-Net of :class:`NAFBlock` s with additive skips and a global residual.

    intro 3x3 conv -> per level ``enc_blocks[i]`` blocks, then a stride-2 2x2 conv doubling the
    channels -> ``middle_blocks`` blocks -> per level a 1x1 conv + PixelShuffle(2) halving them,
    plus the encoder's skip, then ``dec_blocks[i]`` blocks (listed from the deepest level up) ->
    3x3 ``tail`` conv -> ``output = input[:, :out_channels] + tail``. Extra input channels (a
    noise map appended last, as in the BGAN) are read but not part of the residual, as in
    :class:`~realblur_gan.nets.UNet`.

    On the CPU, train with ``perf.channels_last=true``: every 1x1 conv, the depthwise conv and
    the channel LayerNorm then work on contiguous channel vectors (measured forward+backward of
    the default DBGAN net, batch 4, 2 threads: 528 vs 698 ms at 128², 1371 vs 1796 ms at 256²).

    ``stride`` (``2 ** len(enc_blocks)``) is the size multiple the net computes at, exposed as on
    the U-Net so that :func:`realblur_gan.inference.tiling.deblur_image` pads once and aligns its
    tiles;
    ``forward`` itself accepts any H, W by reflect-padding to the multiple and cropping back.

    Init: convs get variance-preserving normal weights (std ``1/sqrt(fan_in)``: there are no
    ReLU-type activations to halve the variance, so He's factor 2 would compound through the
    trunk) and zero biases; ``beta``/``gamma`` are 0, so every block starts as the identity. The
    tail is scaled by 0.01 rather than zeroed: the net starts near (not at) the identity and
    every parameter outside the zero-scaled branches gets a gradient from the first step (with
    a zero tail only the tail would learn in step one; the branches get theirs once ``beta`` and
    ``gamma`` move, from step two). 0.01 and not the U-Net's 0.1 because the additive skips sum
    every level's features into the tail's input: at 0.1 the untrained residual had std ~0.1 on
    [0, 1] images (~20 dB, below a typical blurry input), at 0.01 ~0.01 (~39 dB); Adam's
    normalised steps make up for the smaller gradients. :meth:`zero_residual_` gives the exact
    identity.

    Args:
        in_channels: input channels (image first, then any extra maps such as noise).
        out_channels: output image channels.
        width: channels at full resolution (doubling per level).
        enc_blocks: blocks per encoder level, top (full resolution) first.
        middle_blocks: blocks at the lowest resolution.
        dec_blocks: blocks per decoder level, lowest first; as many levels as ``enc_blocks``.
        global_residual: add the input image to the body's output (else a sigmoid output).
        dw_expand: :class:`NAFBlock` expansion in front of the depthwise conv.
        ffn_expand: :class:`NAFBlock` FFN expansion.
        keep_mean: the output keeps the input's channel means (the residual's mean is removed:
            no tone or colour shift), as :class:`~realblur_gan.nets.UNet`'s ``keep_mean``.
        sca_window: the channel attention's pooling window in input pixels, halved per level
            (:class:`ContextPool`), or None to pool globally (the paper). Set it to the training
            crop (or larger) and training is unchanged while whole photos get, at each pixel, the
            context of a crop around it; :attr:`sca_window` can also be set on a trained net.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` in [0, 1], any H, W
        - Output: :math:`(B, C_{out}, H, W)`; in [0, 1] in eval mode (see
          :func:`~realblur_gan.nets.init.residual_output`)

    Example:
        >>> net = NAFNet(width=8, enc_blocks=[1, 1], middle_blocks=1, dec_blocks=[1, 1])
        >>> net.stride, net(torch.rand(1, 3, 37, 53)).shape
        (4, torch.Size([1, 3, 37, 53]))
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 16,
        enc_blocks: Sequence[int] = (1, 1, 2),
        middle_blocks: int = 2,
        dec_blocks: Sequence[int] = (1, 1, 1),
        global_residual: bool = True,
        dw_expand: int = 2,
        ffn_expand: int = 2,
        keep_mean: bool = False,
        sca_window: int | None = None,
    ) -> None:
        super().__init__()
        check_residual_channels(global_residual, in_channels, out_channels)
        if keep_mean and not global_residual:
            raise ArgumentError("keep_mean", keep_mean, "needs global_residual=true")
        self.keep_mean = keep_mean
        enc_blocks, dec_blocks = [int(n) for n in enc_blocks], [int(n) for n in dec_blocks]
        if len(enc_blocks) != len(dec_blocks):
            raise ArgumentError(
                "dec_blocks", dec_blocks, f"needs one entry per level, as enc_blocks={enc_blocks}"
            )
        if width < 1:
            raise ArgumentError("width", width, "must be >= 1")
        for name, counts in (("enc_blocks", enc_blocks), ("dec_blocks", dec_blocks)):
            if min(counts, default=0) < 0:
                raise ArgumentError(name, counts, "block counts must be >= 0")
        if middle_blocks < 0:
            raise ArgumentError("middle_blocks", middle_blocks, "must be >= 0")
        self.global_residual = global_residual
        self.stride = 2 ** len(enc_blocks)

        def stack(channels: int, n: int) -> nn.Sequential:
            return nn.Sequential(*(NAFBlock(channels, dw_expand, ffn_expand) for _ in range(n)))

        # The intro conv is registered first: predict.net_channels reads the first conv's input.
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for n in enc_blocks:
            self.encoders.append(stack(channels, n))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle = stack(channels, middle_blocks)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for n in dec_blocks:
            # 1x1 conv to 2C, PixelShuffle(2) to C/2 at twice the size. Bias-free as in the
            # paper: the encoder skip added right after carries the offset.
            self.ups.append(
                nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2))
            )
            channels //= 2
            self.decoders.append(stack(channels, n))
        self.tail = nn.Conv2d(width, out_channels, 3, padding=1)
        self._init_weights()
        self.sca_window = sca_window

    @property
    def sca_window(self) -> int | None:
        """The channel attention's pooling window in input pixels; None pools globally."""
        return self._sca_window

    @sca_window.setter
    def sca_window(self, window: int | None) -> None:
        if window is not None and (isinstance(window, bool) or int(window) < 1):
            raise ArgumentError("sca_window", window, "must be a positive number of pixels or null")
        self._sca_window = None if window is None else int(window)
        levels = [
            *range(len(self.encoders)),
            len(self.encoders),
            *reversed(range(len(self.decoders))),
        ]
        stacks = [*self.encoders, self.middle, *self.decoders]
        for level, blocks in zip(levels, stacks, strict=True):
            for block in blocks:
                pool = block.sca[0]
                # Level l sees the input shrunk 2**l times; never below one pixel.
                pool.window = None if window is None else max(1, round(int(window) / 2**level))

    @property
    def traceable(self) -> bool:
        """Whether a traced export (ONNX) computes what this net does at every image size: not
        with a local :attr:`sca_window`, whose branches on the size the trace would freeze."""
        return self._sca_window is None

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Near-identity start without cutting the gradient to the trunk (see the class docstring).
        with torch.no_grad():
            self.tail.weight.mul_(0.01)

    def forward(self, x: Tensor) -> Tensor:
        """Generate an image.

        Args:
            x: input batch in [0, 1].

        Returns:
            The output image batch.

        Shape:
            - x: :math:`(B, C_{in}, H, W)`, any H, W
            - output: :math:`(B, C_{out}, H, W)`
        """
        if x.ndim != 4:
            raise ValueError(f"NAFNet expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        feat = self.intro(pad_to_multiple(x, self.stride))
        skips: list[Tensor] = []
        for blocks, down in zip(self.encoders, self.downs, strict=True):
            feat = blocks(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle(feat)
        for up, blocks in zip(self.ups, self.decoders, strict=True):
            feat = blocks(up(feat) + skips.pop())
        residual = self.tail(feat)[..., :h, :w]
        return residual_output(x, residual, self.global_residual, self.training, self.keep_mean)
