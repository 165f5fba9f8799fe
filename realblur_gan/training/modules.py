"""LightningModules for the three kinds of training stage: BlurGAN, DeblurGAN and JointGAN.

Each stage composes one or two :class:`~realblur_gan.training.adversary.Adversary` s (a generator,
its
discriminator and their objective) and owns what Lightning needs around them: one optimiser
per net, the schedules, the batch counter and the logs. The nets are registered under the same
names in every stage (``bgan_g``, ``bgan_d``, ``dbgan_g``, ``dbgan_d``, ``dbgan_g_ema``), so a
stage hands its weights to the next by checkpoint path and state-dict prefix alone, and
inference finds ``dbgan_g.*`` in any checkpoint.

Batch vocabulary (training): ``sharp`` (B, C, H, W); ``blur_syn`` the synthetic blur of that
same ``sharp`` (paired); ``blur_real`` real blurry photos NOT paired with ``sharp``.
Validation: ``blur``, ``sharp`` (paired, realistic blur, any size) and ``name``. All in [0, 1].

One GAN step (Lightning manual optimisation): each generator runs once; each discriminator
steps on detached fakes; then one backward of the generators' losses, discriminators frozen,
steps every generator. Clipping goes through ``self.clip_gradients``. Profiler ranges name the
parts: ``<gan>/d_step``, ``<gan>/g_loss``, ``generator_step``, ``ema`` and ``validation``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.profiler import record_function

from realblur_gan.errors import ArgumentError
from realblur_gan.evaluation.metrics import psnr
from realblur_gan.nets.padding import forward_padded
from realblur_gan.training.adversary import Adversary
from realblur_gan.training.objective import GANObjective
from realblur_gan.training.panels import log_panel
from realblur_gan.training.schedules import set_total_steps
from realblur_gan.training.validation import RestorationMetrics, validation_lpips


def dbgan_input(
    fake_blur: torch.Tensor, blur_syn: torch.Tensor | None, ratio: float
) -> torch.Tensor:
    """What DBGAN trains on: BGAN's blur clamped to [0, 1], mixed with synthetic pairs.

    One rule for every scheme: a generator clamps its output only in eval mode, so without the
    clamp here DBGAN would see overshooting blur in the joint stage (BGAN training) and
    clamped blur in the separate one (BGAN frozen in eval mode). Inference inputs are images,
    always in [0, 1]. Pixels outside the range pass no gradient back to BGAN.

    Shape:
        - fake_blur, blur_syn: (B, C, H, W), both blurs of the same sharp batch.
        - output: (B, C, H, W) in [0, 1].
    """
    return mix_synthetic(fake_blur.clamp(0.0, 1.0), blur_syn, ratio)


def mix_synthetic(
    fake_blur: torch.Tensor, blur_syn: torch.Tensor | None, ratio: float
) -> torch.Tensor:
    """Replace a random ``ratio`` of the batch's BGAN blur with its synthetic pair.

    Shape:
        - fake_blur, blur_syn: (B, C, H, W), both blurs of the same sharp batch.
        - output: (B, C, H, W).
    """
    if blur_syn is None or ratio <= 0.0:
        return fake_blur
    if ratio >= 1.0:
        return blur_syn
    pick = torch.rand(fake_blur.shape[0], 1, 1, 1, device=fake_blur.device) < ratio
    return torch.where(pick, blur_syn, fake_blur)


class GANStageModule(L.LightningModule):
    """What every stage shares: its adversaries' optimisers, schedules, batch counter and logs.

    Subclasses add their adversaries with :meth:`add_adversary` and implement
    ``training_step`` with :meth:`d_step`, :meth:`Adversary.g_loss
    <realblur_gan.training.adversary.Adversary.g_loss>`, :meth:`generator_step` and
    :meth:`finish_step`.

    Args:
        optim: ``{"generator": partial(Optimizer), "discriminator": partial(Optimizer),
            "scheduler": partial(LRScheduler) | None, "gradient_clip_val": float | None,
            "d_warmup_steps": int, "ema_decay": float | None}``.
        panel_every_n_steps: Training panels at this interval (validation always logs one).
    """

    def __init__(self, optim: dict[str, Any], panel_every_n_steps: int = 200) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.optim = optim
        self.panel_every_n_steps = panel_every_n_steps
        self.panel_dir: str | None = None
        self.adversaries: list[Adversary] = []
        # Resolved `_target_` configs of the nets, stored in every checkpoint so inference can
        # rebuild a net from the checkpoint alone (plain dicts: loadable with weights_only).
        self.net_configs: dict[str, dict[str, Any]] = {}
        # Per fine-tuned net, the init_from source and its weights' fingerprint (plain strings).
        self.init_sources: dict[str, dict[str, str]] = {}
        self.channels_last = False
        # Batches seen (Lightning's global_step counts optimizer steps, several per batch). The
        # buffer goes into checkpoints; the Python int mirror is what the step reads, because
        # reading a GPU tensor mid-step would make the host wait for the device.
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long), persistent=True)
        self._seen = 0

    def add_adversary(
        self, name: str, g: nn.Module, d: nn.Module, objective: GANObjective
    ) -> Adversary:
        """Register a GAN's nets as ``<name>_g``, ``<name>_d`` (their checkpoint prefixes) and
        its objective as ``<name>_objective``; each net gets its own optimiser."""
        self.add_module(f"{name}_g", g)
        self.add_module(f"{name}_d", d)
        self.add_module(f"{name}_objective", objective)
        adversary = Adversary(name, g, d, objective)
        self.adversaries.append(adversary)
        return adversary

    def _trained_nets(self) -> list[tuple[str, nn.Module, str]]:
        """``(name, net, optim key)`` per trained net in optimiser order: each adversary's G
        then D (``bgan_g, bgan_d, dbgan_g, dbgan_d``), the order checkpoints store them in."""
        return [
            (f"{a.name}_{suffix}", net, kind)
            for a in self.adversaries
            for suffix, net, kind in (("g", a.g, "generator"), ("d", a.d, "discriminator"))
        ]

    def on_train_start(self) -> None:
        self._seen = int(self.iteration)  # one sync per fit; correct after a resume
        if getattr(self, "_per_batch_schedule", False):
            for sched in self.lr_schedulers():
                set_total_steps(sched, int(self.trainer.estimated_stepping_batches))

    def _to_channels_last(self, batch: Any) -> None:
        # In place on the batch dict (the batch hooks cannot return a new one).
        if not self.channels_last or not isinstance(batch, dict):
            return
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and value.dim() == 4:
                batch[key] = value.contiguous(memory_format=torch.channels_last)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._to_channels_last(batch)

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0):
        self._to_channels_last(batch)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The RNG streams are saved by the callbacks.RNGState callback of the stage's Trainer.
        checkpoint["net_configs"] = self.net_configs
        # Which weights each net was fine-tuned from (see training.runner.build_stage).
        if self.init_sources:
            checkpoint["init_sources"] = self.init_sources

    # --- optimisers -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizers = [self.optim[kind](net.parameters()) for _, net, kind in self._trained_nets()]
        make_scheduler = self.optim.get("scheduler")
        params = inspect.signature(make_scheduler).parameters if make_scheduler else {}
        # A schedule that asks for `total_steps` is stepped every batch, else every epoch.
        self._per_batch_schedule = "total_steps" in params
        if make_scheduler is None:
            return optimizers, []
        kwargs = {}
        if "total_epochs" in params:
            kwargs["total_epochs"] = self.trainer.max_epochs
        if self._per_batch_schedule:
            # Filled in by on_train_start: reading estimated_stepping_batches here sets up the
            # data before a resumed checkpoint is restored, and the loader's workers then start
            # from the wrong position (resume no longer exact).
            kwargs["total_steps"] = None
        return optimizers, [make_scheduler(opt, **kwargs) for opt in optimizers]

    def _optimizers_of(self, adversary: Adversary) -> tuple[Any, Any]:
        """The optimisers of ``adversary``'s G and D."""
        i = 2 * self.adversaries.index(adversary)
        opts = self.optimizers()
        return opts[i], opts[i + 1]

    def _step(self, opts: list[Any], loss: torch.Tensor) -> None:
        """Zero, backprop ``loss`` once, clip and step the optimisers ``opts``."""
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        clip = self.optim.get("gradient_clip_val")
        for opt in opts:
            if clip:
                self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
            opt.step()

    def d_step(
        self,
        adversary: Adversary,
        real: torch.Tensor,
        fake: torch.Tensor,
        cond: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``adversary``'s discriminator step (see :meth:`Adversary.d_step
        <realblur_gan.training.adversary.Adversary.d_step>`) with its optimiser here."""
        _, opt_d = self._optimizers_of(adversary)
        return adversary.d_step(real, fake, lambda loss: self._step([opt_d], loss), cond)

    def generator_step(self, loss: torch.Tensor) -> None:
        """One backward of the generators' summed ``loss``, then a step of every generator."""
        with record_function("generator_step"):
            self._step([self._optimizers_of(a)[0] for a in self.adversaries], loss)

    def _step_schedulers(self) -> None:
        # Per-epoch schedules are stepped inside the last training batch rather than in
        # on_train_epoch_end: the epoch's checkpoint is written before that hook runs, and a
        # resumed run would then replay the step (one epoch's LR off).
        if not (getattr(self, "_per_batch_schedule", False) or self.trainer.is_last_batch):
            return
        for sched in self.lr_schedulers() or []:
            sched.step()

    @property
    def generators_active(self) -> bool:
        """False during the discriminator warm-up."""
        return self._seen >= int(self.optim.get("d_warmup_steps", 0) or 0)

    def finish_step(self, logs: dict[str, torch.Tensor], columns: dict[str, torch.Tensor]) -> None:
        """Log scalars, learning rates and (at the interval) a training panel."""
        self.iteration += 1
        self._seen += 1
        self._step_schedulers()
        for (name, _, _), opt in zip(self._trained_nets(), self.optimizers(), strict=True):
            logs[f"lr/{name}"] = torch.tensor(opt.param_groups[0]["lr"])
        bar = {k for k in logs if k.endswith(("loss_g", "loss_d"))}
        self.log_dict({k: v for k, v in logs.items() if k in bar}, prog_bar=True)
        self.log_dict({k: v for k, v in logs.items() if k not in bar})
        if self.panel_every_n_steps and self._seen % self.panel_every_n_steps == 0:
            log_panel(self, "train/panel", columns)


class BlurGAN(GANStageModule):
    """BGAN alone: learns to turn sharp images into blurry ones.

    Two uses, chosen by config: pix2pix-style pre-training on synthetic pairs
    (``real_source="blur_syn"``, a D built with ``cond_channels``, content vs ``blur_syn``) and
    adversarial training against unpaired real blur (``real_source="blur_real"``, content vs
    ``sharp``).

    Args:
        bgan_g: Generator, sharp (B, C, H, W) -> blurry (B, C, H, W) (noise added inside).
        bgan_d: Discriminator; one built with ``cond_channels > 0`` is given ``cond=sharp``.
        objective: Adversarial + content terms.
        optim: See ``GANStageModule``.
        real_source: Batch key of the blurry images D sees as real.
        content_target: Batch key the content terms compare the fake blur with.
        panel_every_n_steps: Training panel interval.
    """

    def __init__(
        self,
        bgan_g: nn.Module,
        bgan_d: nn.Module,
        objective: GANObjective,
        optim: dict[str, Any],
        real_source: str = "blur_real",
        content_target: str = "sharp",
        panel_every_n_steps: int = 200,
    ) -> None:
        super().__init__(optim, panel_every_n_steps)
        self.bgan = self.add_adversary("bgan", bgan_g, bgan_d, objective)
        # The D decides whether it is conditional (pix2pix's D sees the sharp image too).
        self.conditional = bool(getattr(bgan_d, "cond_channels", 0))
        self.real_source = real_source
        self.content_target = content_target

    def forward(self, sharp: torch.Tensor) -> torch.Tensor:
        return self.bgan.g(sharp)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        sharp, real = batch["sharp"], batch[self.real_source]
        cond = sharp if self.conditional else None
        fake = self.bgan.g(sharp)
        logs = self.d_step(self.bgan, real, fake, cond)
        if self.generators_active:
            loss_g, g_logs = self.bgan.g_loss(real, fake, batch[self.content_target], cond)
            self.generator_step(loss_g)
            logs.update(g_logs)
        self.finish_step(logs, {"sharp": sharp, "fake_blur": fake, "real_blur": real})

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with record_function("validation"):
            fake = forward_padded(self.bgan.g, batch["sharp"]).clamp(0, 1)
            # The realistic blur of the same sharp image is one draw of a random process, so
            # this is a proxy for "blurs about as much as real blur", not a score to maximise.
            score = psnr(fake, batch["blur"]).mean()
            self.log("val/bgan_psnr_vs_real_blur", score, batch_size=fake.shape[0])
            if batch_idx == 0:
                columns = {"sharp": batch["sharp"], "fake_blur": fake, "real_blur": batch["blur"]}
                log_panel(self, "val/panel", columns)


class DeblurringModule(GANStageModule):
    """What the stages that train DBGAN share: its forward, its EMA copy and its validation.

    Validation runs the :attr:`deblurrer` on whole images of any size (padded to its stride
    and cropped back) and logs ``val/psnr``, ``val/ssim``, the blurry input's
    ``val/psnr_input``, ``val/ssim_input`` and, when its weights are present, ``val/lpips``
    (see :class:`~realblur_gan.training.validation.RestorationMetrics`). Subclasses add the
    ``dbgan``
    adversary, then call :meth:`setup_ema`.

    Args:
        optim, panel_every_n_steps: See ``GANStageModule``.
    """

    dbgan: Adversary
    bgan_g: nn.Module | None

    def __init__(self, optim: dict[str, Any], panel_every_n_steps: int = 200) -> None:
        super().__init__(optim, panel_every_n_steps)
        # LPIPS in validation when its backbone weights are present (else skipped, logged once).
        self.val_lpips = True

    def forward(self, blur: torch.Tensor) -> torch.Tensor:
        return self.dbgan.g(blur)

    def deblur(self, blur: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """DBGAN's output and, for a coarse-to-fine generator, its whole pyramid."""
        if hasattr(self.dbgan.g, "forward_pyramid"):
            pyramid = self.dbgan.g.forward_pyramid(blur)
            return pyramid[-1], pyramid
        return self.dbgan.g(blur), None

    @property
    def reads_synthetic_pairs(self) -> bool:
        """Whether training reads ``blur_syn``; the runner skips making it otherwise."""
        return self.synthetic_ratio > 0

    # --- EMA of the deblurring generator -----------------------------------------------------
    def setup_ema(self, decay: float | None) -> None:
        """Keep ``dbgan_g_ema``, an exponential moving average of ``dbgan_g`` (None: off)."""
        self.ema_decay = decay
        self.dbgan_g_ema = None
        if decay is not None:
            if not 0.0 < decay < 1.0:
                raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
            # Its train/eval mode follows the module's (Lightning switches both): it never runs
            # a forward while training, and a copy left in eval mode makes Lightning warn about
            # eval-mode modules at the start of every fit.
            self.dbgan_g_ema = copy.deepcopy(self.dbgan.g).requires_grad_(False)

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema += (1 - decay) * (net - ema)`` for every parameter; buffers are copied."""
        if self.dbgan_g_ema is None:
            return
        with record_function("ema"):
            weight = 1.0 - self.ema_decay
            net, ema = self.dbgan.g, self.dbgan_g_ema
            for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                p_ema.lerp_(p, weight)
            for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
                b_ema.copy_(b)

    def generator_step(self, loss: torch.Tensor) -> None:
        """The generators' step, then the EMA update that follows every one of them."""
        super().generator_step(loss)
        self.update_ema()

    @property
    def deblurrer(self) -> nn.Module:
        """The generator used for validation and export: the EMA copy when kept."""
        return self.dbgan_g_ema if self.dbgan_g_ema is not None else self.dbgan.g

    # --- validation -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.val_metrics = RestorationMetrics(validation_lpips(self.val_lpips))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with record_function("validation"):
            blur, sharp = batch["blur"], batch["sharp"]
            restored = forward_padded(self.deblurrer, blur)
            self.val_metrics.update(restored, blur, sharp)
            if batch_idx == 0:
                fake = blur if self.bgan_g is None else forward_padded(self.bgan_g, sharp)
                columns = {"sharp": sharp, "fake_blur": fake, "real_blur": blur}
                log_panel(self, "val/panel", {**columns, "restored": restored})

    def on_validation_epoch_end(self) -> None:
        scores = {f"val/{k}": v for k, v in self.val_metrics.compute().items()}
        self.log("val/psnr", scores.pop("val/psnr"), prog_bar=True)
        self.log_dict(scores)
        self.val_metrics.reset()


class DeblurGAN(DeblurringModule):
    """DBGAN trained on the blur of a frozen BGAN (the separate scheme's last stage).

    Args:
        bgan_g: Trained BGAN generator (frozen here: eval mode, no gradients), or None to train
            on synthetic pairs only.
        dbgan_g: Deblurring generator, blurry (B, C, H, W) -> sharp (B, C, H, W).
        dbgan_d: Discriminator judging restored vs real sharp images.
        objective: Adversarial + content terms (compared with ``sharp``).
        optim: See ``GANStageModule``.
        synthetic_ratio: Fraction of each batch taken from the synthetic pairs instead.
        panel_every_n_steps: Training panel interval.
    """

    def __init__(
        self,
        bgan_g: nn.Module | None,
        dbgan_g: nn.Module,
        dbgan_d: nn.Module,
        objective: GANObjective,
        optim: dict[str, Any],
        synthetic_ratio: float = 0.0,
        panel_every_n_steps: int = 200,
    ) -> None:
        super().__init__(optim, panel_every_n_steps)
        self.bgan_g = bgan_g
        if bgan_g is not None:
            bgan_g.requires_grad_(False).eval()
        self.dbgan = self.add_adversary("dbgan", dbgan_g, dbgan_d, objective)
        self.synthetic_ratio = 1.0 if bgan_g is None else synthetic_ratio
        self.setup_ema(optim.get("ema_decay"))

    def train(self, mode: bool = True) -> DeblurGAN:
        super().train(mode)
        if self.bgan_g is not None:
            self.bgan_g.eval()  # frozen: no dropout/batch-norm updates either
        return self

    def make_blur(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The blurry training input: BGAN's blur of ``sharp``, mixed with synthetic pairs."""
        if self.bgan_g is None:
            return batch["blur_syn"]
        with torch.no_grad():
            fake = self.bgan_g(batch["sharp"])
        return dbgan_input(fake, batch.get("blur_syn"), self.synthetic_ratio)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        sharp = batch["sharp"]
        blur = self.make_blur(batch)
        restored, pyramid = self.deblur(blur)
        logs = self.d_step(self.dbgan, sharp, restored)
        if self.generators_active:
            loss_g, g_logs = self.dbgan.g_loss(sharp, restored, sharp, pyramid=pyramid)
            self.generator_step(loss_g)
            logs.update(g_logs)
        columns = {"sharp": sharp, "fake_blur": blur, "real_blur": batch["blur_real"]}
        self.finish_step(logs, {**columns, "restored": restored})


class JointGAN(DeblurringModule):
    """All four nets in one step, each with its own optimiser.

    Order per batch: BGAN G forward -> BGAN D step -> DBGAN G forward on BGAN's blur (that
    sample, or with ``dbgan_blur_eval`` a second, no-grad one from BGAN in eval mode) -> DBGAN
    D step -> one backward of both generator losses, stepping both generators. Once
    ``bgan_max_steps`` batches are seen, the BGAN parts drop out and DBGAN trains on the
    eval-mode sample alone.

    Args:
        bgan_g, bgan_d, dbgan_g, dbgan_d: The four nets.
        bgan_objective: BGAN's adversarial (vs real blur) + content (vs sharp) terms.
        dbgan_objective: DBGAN's adversarial (vs sharp) + content (vs sharp) terms.
        optim: See ``GANStageModule``.
        synthetic_ratio: Fraction of DBGAN's inputs taken from the synthetic pairs.
        dbgan_grad_to_bgan: Let DBGAN's loss back-propagate into BGAN's generator.
        dbgan_blur_eval: Without that gradient, train DBGAN on a separate no-grad sample of
            BGAN in eval mode, as a frozen BGAN would give it. Worth its extra BGAN forward
            only for a BGAN whose eval mode differs (a learnable camera renders with its
            averaged statistics there); False, the default, reuses the training sample.
        bgan_max_steps: Train BGAN (its G and D) for this many batches only, then freeze it
            (eval mode, no D step, no BGAN loss) and go on training DBGAN alone on its blur,
            as the separate scheme's last stage does (a little cheaper per batch).
            None (the default) trains all four nets to the end.
        panel_every_n_steps: Training panel interval.
    """

    def __init__(
        self,
        bgan_g: nn.Module,
        bgan_d: nn.Module,
        dbgan_g: nn.Module,
        dbgan_d: nn.Module,
        bgan_objective: GANObjective,
        dbgan_objective: GANObjective,
        optim: dict[str, Any],
        synthetic_ratio: float = 0.0,
        dbgan_grad_to_bgan: bool = False,
        dbgan_blur_eval: bool = False,
        bgan_max_steps: int | None = None,
        panel_every_n_steps: int = 200,
    ) -> None:
        super().__init__(optim, panel_every_n_steps)
        if bgan_max_steps is not None and bgan_max_steps < 0:
            raise ArgumentError(
                "bgan_max_steps", bgan_max_steps, "use a batch count >= 0, or null for no limit"
            )
        self.bgan = self.add_adversary("bgan", bgan_g, bgan_d, bgan_objective)
        self.dbgan = self.add_adversary("dbgan", dbgan_g, dbgan_d, dbgan_objective)
        self.synthetic_ratio = synthetic_ratio
        self.dbgan_grad_to_bgan = dbgan_grad_to_bgan
        self.dbgan_blur_eval = dbgan_blur_eval
        self.bgan_max_steps = bgan_max_steps
        self.setup_ema(optim.get("ema_decay"))

    def _frozen_sample(self, sharp: torch.Tensor) -> torch.Tensor:
        """A fresh blur of ``sharp`` from BGAN in eval mode, without grad: what a frozen BGAN
        gives the separate scheme's DBGAN (for a learnable camera: its averaged statistics).

        Shape:
            - sharp, output: (B, C, H, W)
        """
        g = self.bgan.g
        was_training = g.training
        g.eval()
        try:
            with torch.no_grad():
                return g(sharp)
        finally:
            g.train(was_training)

    @property
    def bgan_frozen(self) -> bool:
        """Whether BGAN's training is over (``bgan_max_steps`` batches seen)."""
        return self.bgan_max_steps is not None and self._seen >= self.bgan_max_steps

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        sharp, blur_real = batch["sharp"], batch["blur_real"]
        train_bgan = not self.bgan_frozen
        logs: dict[str, torch.Tensor] = {}
        if train_bgan:
            fake_blur = self.bgan.g(sharp)
            logs.update(self.d_step(self.bgan, blur_real, fake_blur))

        if train_bgan and self.dbgan_grad_to_bgan:
            deblur_in = fake_blur
        elif train_bgan and not self.dbgan_blur_eval:
            deblur_in = fake_blur.detach()
        else:  # as DeblurGAN.make_blur gives the separate scheme
            deblur_in = self._frozen_sample(sharp)
        deblur_in = dbgan_input(deblur_in, batch.get("blur_syn"), self.synthetic_ratio)
        restored, pyramid = self.deblur(deblur_in)
        logs.update(self.d_step(self.dbgan, sharp, restored))

        if self.generators_active:
            loss, logs_d = self.dbgan.g_loss(sharp, restored, sharp, pyramid=pyramid)
            if train_bgan:
                loss_b, logs_b = self.bgan.g_loss(blur_real, fake_blur, sharp)
                loss = loss + loss_b
                logs.update(logs_b)
            # A frozen BGAN has no gradients: its optimiser's step leaves it as it is.
            self.generator_step(loss)
            logs.update(logs_d)
        shown = fake_blur if train_bgan else deblur_in
        columns = {"sharp": sharp, "fake_blur": shown, "real_blur": blur_real}
        self.finish_step(logs, {**columns, "restored": restored})


__all__ = [
    "BlurGAN",
    "DeblurGAN",
    "DeblurringModule",
    "GANStageModule",
    "JointGAN",
    "dbgan_input",
    "mix_synthetic",
]
