"""Validation scores of a deblurring generator, accumulated over an epoch as one metric object."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from realblur_gan.evaluation.metrics import psnr, ssim
from realblur_gan.training.losses import LPIPSLoss
from realblur_gan.weights.backbones import MissingPretrainedWeights

log = logging.getLogger(__name__)


class RestorationMetrics(Metric):
    """Mean PSNR and SSIM of restored images and, as the baseline to beat, of the blurry inputs;
    mean LPIPS too when an LPIPS module is given.

    Means are over images (every batch weighted by its size) and, under DDP, over every
    process. PSNR is capped (see :func:`realblur_gan.evaluation.metrics.psnr`), so a perfect
    restoration
    does not turn the mean into ``inf``.

    Args:
        lpips: ``(pred, target) -> mean LPIPS of the batch``, e.g.
            :class:`~realblur_gan.training.losses.LPIPSLoss`; None leaves ``lpips`` out. It is kept
            out
            of the module tree (neither trained nor saved in checkpoints) and follows the
            images' device.

    Shape:
        - restored, blur, sharp (of :meth:`update`): :math:`(B, C, H, W)` in [0, 1]
          (``restored`` is clamped to it)
        - :meth:`compute`: ``{"psnr", "ssim", "psnr_input", "ssim_input"[, "lpips"], "images"}``
          scalars; ``images`` is how many images the means are over (all processes)

    Example:
        >>> scores = RestorationMetrics()
        >>> sharp = torch.rand(2, 3, 16, 16)
        >>> scores.update(sharp, sharp.flip(-1), sharp)
        >>> float(scores.compute()["psnr"])
        100.0
    """

    full_state_update = False

    def __init__(self, lpips: nn.Module | None = None) -> None:
        super().__init__()
        self.names = ("psnr", "ssim", "psnr_input", "ssim_input")
        if lpips is not None:
            self.names += ("lpips",)
        for name in self.names:
            self.add_state(name, default=torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        object.__setattr__(self, "lpips_fn", lpips)

    def update(self, restored: Tensor, blur: Tensor, sharp: Tensor) -> None:
        """Add a batch of restored images, their blurry inputs and sharp references."""
        restored = restored.clamp(0, 1)
        sums = {
            "psnr": psnr(restored, sharp).sum(),
            "ssim": ssim(restored, sharp).sum(),
            "psnr_input": psnr(blur, sharp).sum(),
            "ssim_input": ssim(blur, sharp).sum(),
        }
        n = sharp.shape[0]
        if self.lpips_fn is not None:
            self.lpips_fn.to(restored.device)
            sums["lpips"] = self.lpips_fn(restored, sharp) * n
        for name, value in sums.items():
            setattr(self, name, getattr(self, name) + value)
        self.count += n

    def compute(self) -> dict[str, Tensor]:
        """The means over every image seen since the last :meth:`reset`, and their number."""
        means = {name: getattr(self, name) / self.count for name in self.names}
        return {**means, "images": self.count.float()}


def validation_lpips(enabled: bool) -> nn.Module | None:
    """LPIPS for validation when ``enabled`` and its backbone weights are present, else None.

    Missing weights are not an error here: validation then goes on without LPIPS, and one log
    line says why.
    """
    if not enabled:
        return None
    try:
        return LPIPSLoss()
    except MissingPretrainedWeights as err:
        log.info("val/lpips not logged: %s", err)
        return None
