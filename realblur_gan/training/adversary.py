"""One GAN's two halves: a generator, its discriminator and their objective.

An :class:`Adversary` computes the discriminator step (on detached fakes) and the generator's
loss (with the discriminator frozen); the LightningModule that holds it owns the optimisers and
decides when each half runs. It is a plain object, not an ``nn.Module``: the module registers
the nets under their checkpoint names (``bgan_g``, ``bgan_d``, ...), and the adversary shares
them.

Each half runs inside a ``torch.profiler.record_function`` range named ``<name>/d_step`` and
``<name>/g_loss`` so that a profile attributes its time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.profiler import record_function

from realblur_gan.training.objective import GANObjective, Logits, mean_logit


@contextlib.contextmanager
def frozen(*nets: nn.Module) -> Iterator[None]:
    """Turn off parameter gradients of ``nets`` for the block (the D during a G step)."""
    saved = [[p.requires_grad for p in n.parameters()] for n in nets]
    for n in nets:
        n.requires_grad_(False)
    try:
        yield
    finally:
        for n, flags in zip(nets, saved, strict=True):
            for p, flag in zip(n.parameters(), flags, strict=True):
                p.requires_grad_(flag)


class Adversary:
    """A generator ``g`` judged by a discriminator ``d`` under an ``objective``.

    Args:
        name: ``"bgan"`` or ``"dbgan"``: the prefix of its logged values
            (``train/<name>/loss_d``, ...) and of its profiler ranges.
        g: The generator.
        d: The discriminator, ``d(x)`` or ``d(x, cond=...)``, returning a logit map or a list of
            maps (one per scale).
        objective: Adversarial form and reconstruction terms; with an adversarial weight of 0
            the discriminator is neither run nor stepped.

    Example:
        >>> from realblur_gan.training.losses import RelativisticLSGANLoss
        >>> from realblur_gan.nets import PatchGAN, UNet
        >>> objective = GANObjective(RelativisticLSGANLoss())
        >>> adv = Adversary("dbgan", UNet(width=4, depth=2), PatchGAN(width=4), objective)
        >>> opt_d = torch.optim.Adam(adv.d.parameters())
        >>> blur, sharp = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
        >>> fake = adv.g(blur)  # once per step, shared by both halves
        >>> logs = adv.d_step(sharp, fake, step=lambda loss: (loss.backward(), opt_d.step()))
        >>> loss_g, g_logs = adv.g_loss(sharp, fake, target=sharp)
        >>> sorted(g_logs)
        ['train/dbgan/g_adv', 'train/dbgan/loss_g']
    """

    def __init__(self, name: str, g: nn.Module, d: nn.Module, objective: GANObjective) -> None:
        self.name = name
        self.g = g
        self.d = d
        self.objective = objective

    @property
    def active(self) -> bool:
        """Whether the discriminator takes part (adversarial weight not 0)."""
        return self.objective.adversarial_active

    def _judge(self, x: torch.Tensor, cond: torch.Tensor | None) -> Logits:
        return self.d(x) if cond is None else self.d(x, cond=cond)

    def d_loss(
        self, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's loss on real images vs the generator's, detached from ``g``.

        Args:
            real: Images D should call real, (B, C, H, W).
            fake: The generator's images, (B, C, H, W); detached here.
            cond: What a conditional D also sees, (B, C', H, W), or None.

        Returns:
            The loss and its logs: ``loss_d`` and the mean raw outputs ``d_real``/``d_fake``
            (they show a collapsing D early).
        """
        real_logits = self._judge(real, cond)
        fake_logits = self._judge(fake.detach(), cond)
        loss = self.objective.d_loss(real_logits, fake_logits)
        return loss, {
            f"train/{self.name}/loss_d": loss.detach(),
            f"train/{self.name}/d_real": mean_logit(real_logits),
            f"train/{self.name}/d_fake": mean_logit(fake_logits),
        }

    def d_step(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        step: Callable[[torch.Tensor], None],
        cond: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One discriminator update: :meth:`d_loss`, then ``step(loss)``.

        Skipped when the adversarial weight is 0: the D would then only cost time (about half
        of a DBGAN step), since nothing reads its verdict.

        Args:
            real, fake, cond: As :meth:`d_loss`.
            step: Back-propagates the loss and steps D's optimiser (its owner's clipping
                included). Only D receives gradient: the fakes are detached.

        Returns:
            The logs of :meth:`d_loss`; empty when skipped.
        """
        if not self.active:
            return {}
        with record_function(f"{self.name}/d_step"):
            loss, logs = self.d_loss(real, fake, cond)
            step(loss)
        return logs

    def g_loss(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        target: torch.Tensor,
        cond: torch.Tensor | None = None,
        pyramid: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's loss, D frozen: gradient reaches ``g`` through ``fake`` and no D
        parameter gets any.

        Args:
            real: Real images for the relativistic terms, (B, C, H, W).
            fake: The generator's images, attached to its graph, (B, C, H, W).
            target: What the reconstruction terms compare ``fake`` with, (B, C, H, W).
            cond: As :meth:`d_loss`.
            pyramid: A coarse-to-fine generator's outputs, last = ``fake`` (see
                :meth:`GANObjective.g_loss`).

        Returns:
            The weighted total and its logs: ``loss_g`` and each unweighted part ``g_<part>``.
        """
        with record_function(f"{self.name}/g_loss"):
            if not self.active:
                total, parts = self.objective.g_loss(None, None, fake, target, pyramid)
            else:
                with frozen(self.d):
                    with torch.no_grad():  # real logits are constants of the G loss
                        real_logits = self._judge(real, cond)
                    fake_logits = self._judge(fake, cond)
                total, parts = self.objective.g_loss(
                    real_logits, fake_logits, fake, target, pyramid
                )
        logs = {f"train/{self.name}/loss_g": total.detach()}
        logs.update({f"train/{self.name}/g_{k}": v.detach() for k, v in parts.items()})
        return total, logs
