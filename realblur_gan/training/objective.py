"""One GAN's objective: an adversarial form plus weighted reconstruction terms."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from realblur_gan.errors import check_range
from realblur_gan.weights.backbones import MissingPretrainedWeights

log = logging.getLogger(__name__)

Logits = torch.Tensor | list[torch.Tensor]


def mean_logit(logits: Logits) -> torch.Tensor:
    """Mean raw discriminator output (over scales, batch and patches), detached, for logging."""
    if isinstance(logits, list | tuple):
        return torch.stack([x.detach().mean() for x in logits]).mean()
    return logits.detach().mean()


class GANObjective(nn.Module):
    """Adversarial loss + named, weighted terms for one generator/discriminator pair.

    Terms come from config as ``{name: {weight, fn, optional}}``. A term whose weight is 0 is
    not built. A term whose pretrained backbone is missing raises, unless ``optional`` is true:
    then it is dropped with a warning that says how to provide the weights, so nothing ever
    trains against a randomly initialised "pretrained" net.

    Args:
        adversarial: Config (or instance) of an adversarial loss with ``d_loss``/``g_loss``.
        adv_weight: Weight of the adversarial term in the generator loss.
        terms: Mapping of term name to ``{"weight": float, "fn": config, "optional": bool}``.
        name: What the messages call this objective (``bgan``, ``dbgan``, ...).
    """

    def __init__(
        self,
        adversarial: Any,
        adv_weight: float = 1.0,
        terms: Mapping[str, Any] | None = None,
        name: str = "objective",
    ) -> None:
        super().__init__()
        self.name = name
        check_weights(adv_weight, terms)  # before anything is built
        self.adversarial = _build(adversarial)
        self.adv_weight = float(adv_weight)
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for term, spec in (terms or {}).items():
            weight = float(spec.get("weight", 1.0))
            if weight == 0.0:
                continue
            try:
                fn = _build(spec["fn"])
            except Exception as err:
                missing = _missing_weights(err)
                if missing is None:
                    raise
                if not spec.get("optional", False):
                    raise missing from None
                log.warning(
                    "%s: loss term %r dropped (marked optional): %s", self.name, term, missing
                )
                continue
            self.terms[term] = fn
            self.weights[term] = weight

    @property
    def adversarial_active(self) -> bool:
        """False when the adversarial weight is 0: no D step, no D forward in the G step."""
        return self.adv_weight != 0.0

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """Discriminator loss from raw outputs on real and (detached) fake images."""
        return self.adversarial.d_loss(real_logits, fake_logits)

    def g_loss(
        self,
        real_logits: Logits | None,
        fake_logits: Logits | None,
        pred: torch.Tensor,
        target: torch.Tensor,
        pyramid: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Generator loss and its parts.

        Args:
            real_logits: D outputs on real images (detached: D is frozen in the G step); None
                when the adversarial weight is 0.
            fake_logits: D outputs on the generator's images, carrying gradient to G; None
                when the adversarial weight is 0.
            pred: The generator's images, (B, C, H, W).
            target: What the reconstruction terms compare ``pred`` with, (B, C, H, W).
            pyramid: A coarse-to-fine generator's outputs (last = ``pred``), handed instead of
                ``pred`` to the terms whose loss ``accepts_pyramid`` (``losses.PyramidLoss``).

        Returns:
            The weighted total and a dict of unweighted parts (``adv`` and each term's name).
        """
        parts: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(())
        if self.adversarial_active:
            parts["adv"] = self.adversarial.g_loss(real_logits, fake_logits)
            total = total + self.adv_weight * parts["adv"]
        for name, fn in self.terms.items():
            takes_pyramid = pyramid is not None and getattr(fn, "accepts_pyramid", False)
            parts[name] = fn(pyramid if takes_pyramid else pred, target)
            total = total + self.weights[name] * parts[name]
        return total, parts


def check_weights(adv_weight: Any, terms: Mapping[str, Any] | None) -> None:
    """Refuse a weight that is not a finite number >= 0 (0 turns its term off).

    A negative weight would make a generator maximise its loss, and a non-finite one poisons
    every step; both are refused before anything trains.

    Args:
        adv_weight: The adversarial term's weight.
        terms: ``{name: {"weight": ...}}`` as :class:`GANObjective` takes them.

    Raises:
        ArgumentError: naming ``adv_weight`` or ``terms.<name>.weight``.
    """
    check_range("adv_weight", adv_weight, low=0)
    for term, spec in (terms or {}).items():
        check_range(f"terms.{term}.weight", spec.get("weight", 1.0), low=0)


def _missing_weights(err: BaseException | None) -> MissingPretrainedWeights | None:
    """The MissingPretrainedWeights behind ``err`` (Hydra wraps constructor errors)."""
    while err is not None:
        if isinstance(err, MissingPretrainedWeights):
            return err
        err = err.__cause__ or err.__context__
    return None


def _build(spec: Any) -> Any:
    if isinstance(spec, nn.Module):
        return spec
    return instantiate(spec)
