"""LightningModules for the three kinds of training stage: BlurGAN, DeblurGAN and JointGAN.

Every module names its nets the same way (``bgan_g``, ``bgan_d``, ``dbgan_g``, ``dbgan_d``) so a
stage hands its weights to the next by checkpoint path and state-dict prefix alone, and
inference finds ``dbgan_g.*`` in any checkpoint.

Batch vocabulary (training): ``sharp`` (B, C, H, W); ``blur_syn`` the synthetic blur of that
same ``sharp`` (paired); ``blur_real`` real blurry photos NOT paired with ``sharp``.
Validation: ``blur``, ``sharp`` (paired, realistic blur) and ``name``. All in [0, 1].

One GAN step (Lightning manual optimisation): the generator runs once; the discriminator steps
on detached fakes; then the generator steps with the discriminator frozen. Schedulers are
stepped by hand at epoch end; clipping goes through ``self.clip_gradients``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from realblur_gan.errors import ArgumentError
from realblur_gan.metrics import psnr, ssim
from realblur_gan.objective import GANObjective, mean_logit
from realblur_gan.panels import log_panel
from realblur_gan.schedules import set_total_steps

log = logging.getLogger(__name__)

OptimFactory = Callable[..., torch.optim.Optimizer]


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
    """Shared machinery: optimisers per net, the D step, clipping, schedulers, validation.

    Subclasses list the nets they train in ``trained_nets`` (generators end in ``_g``,
    discriminators in ``_d``) and implement ``training_step``.

    Args:
        optim: ``{"generator": partial(Optimizer), "discriminator": partial(Optimizer),
            "scheduler": partial(LRScheduler) | None, "gradient_clip_val": float | None,
            "d_warmup_steps": int}``.
        panel_every_n_steps: Training panels at this interval (validation always logs one).
    """

    trained_nets: tuple[str, ...] = ()

    def __init__(self, optim: dict[str, Any], panel_every_n_steps: int = 200) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.optim = optim
        self.panel_every_n_steps = panel_every_n_steps
        self.panel_dir: str | None = None
        # Resolved `_target_` configs of the nets, stored in every checkpoint so inference can
        # rebuild a net from the checkpoint alone (plain dicts: loadable with weights_only).
        self.net_configs: dict[str, dict[str, Any]] = {}
        self.channels_last = False
        # LPIPS in validation when its backbone weights are present (else skipped, logged once).
        self.val_lpips = True
        self.val_lpips_weights: str | None = None
        # Batches seen (Lightning's global_step counts optimizer steps, several per batch). The
        # buffer goes into checkpoints; the Python int mirror is what the step reads, because
        # reading a GPU tensor mid-step would make the host wait for the device.
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long), persistent=True)
        self._seen = 0

    def on_train_start(self) -> None:
        self._seen = int(self.iteration)  # one sync per fit; correct after a resume
        if getattr(self, "_per_batch_schedule", False):
            schedulers = self.lr_schedulers()
            for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
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
        checkpoint["net_configs"] = self.net_configs
        # Global RNG streams (noise maps, synthetic mixing) so a resumed run continues exactly.
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": _python_state_to_plain(random.getstate()),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
        np.random.set_state(_numpy_state_from_plain(states["numpy"]))
        random.setstate(_python_state_from_plain(states["python"]))

    # --- optimisers -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizers, schedulers = [], []
        make_scheduler = self.optim.get("scheduler")
        params = inspect.signature(make_scheduler).parameters if make_scheduler else {}
        # A schedule that asks for `total_steps` is stepped every batch, else every epoch.
        self._per_batch_schedule = "total_steps" in params
        for name in self.trained_nets:
            kind = "generator" if name.endswith("_g") else "discriminator"
            opt = self.optim[kind](getattr(self, name).parameters())
            optimizers.append(opt)
            if make_scheduler is not None:
                kwargs = {}
                if "total_epochs" in params:
                    kwargs["total_epochs"] = self.trainer.max_epochs
                if self._per_batch_schedule:
                    # Filled in by on_train_start: reading estimated_stepping_batches here sets
                    # up the data before a resumed checkpoint is restored, and the loader's
                    # workers then start from the wrong position (resume no longer exact).
                    kwargs["total_steps"] = None
                schedulers.append(make_scheduler(opt, **kwargs))
        return optimizers, schedulers

    def _optimizer(self, name: str) -> Any:
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        return opts[self.trained_nets.index(name)]

    def _step(self, names: tuple[str, ...], loss: torch.Tensor) -> None:
        """Zero, backprop ``loss`` once, clip and step the optimisers of ``names``."""
        opts = [self._optimizer(n) for n in names]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        clip = self.optim.get("gradient_clip_val")
        for opt in opts:
            if clip:
                self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
            opt.step()

    def _step_schedulers(self) -> None:
        # Per-epoch schedules are stepped inside the last training batch rather than in
        # on_train_epoch_end: the epoch's checkpoint is written before that hook runs, and a
        # resumed run would then replay the step (one epoch's LR off).
        if not (getattr(self, "_per_batch_schedule", False) or self.trainer.is_last_batch):
            return
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
            sched.step()

    @property
    def generators_active(self) -> bool:
        """False during the discriminator warm-up."""
        return self._seen >= int(self.optim.get("d_warmup_steps", 0) or 0)

    # --- the discriminator step -------------------------------------------------------------
    def discriminator_step(
        self,
        name: str,
        objective: GANObjective,
        real: torch.Tensor,
        fake: torch.Tensor,
        cond: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One optimiser step of discriminator ``name`` on real vs detached fake images.

        Skipped when the objective's adversarial weight is 0: the D would then only cost time
        (about half of a DBGAN step), since nothing reads its verdict.
        """
        if not objective.adversarial_active:
            return {}
        net_d = getattr(self, name)
        kwargs = {} if cond is None else {"cond": cond}
        prefix = name.removesuffix("_d")
        with record_function(f"{prefix}/d_step"):
            real_logits = net_d(real, **kwargs)
            fake_logits = net_d(fake.detach(), **kwargs)
            loss = objective.d_loss(real_logits, fake_logits)
            self._step((name,), loss)
        return {
            f"train/{prefix}/loss_d": loss.detach(),
            f"train/{prefix}/d_real": mean_logit(real_logits),
            f"train/{prefix}/d_fake": mean_logit(fake_logits),
        }

    def generator_loss(
        self,
        prefix: str,
        objective: GANObjective,
        real: torch.Tensor,
        fake: torch.Tensor,
        target: torch.Tensor,
        cond: torch.Tensor | None = None,
        pyramid: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Generator loss of GAN ``prefix`` (``bgan``/``dbgan``) with its D frozen."""
        net_d = getattr(self, f"{prefix}_d")
        kwargs = {} if cond is None else {"cond": cond}
        with record_function(f"{prefix}/g_loss"):
            if not objective.adversarial_active:
                total, parts = objective.g_loss(None, None, fake, target, pyramid)
            else:
                with frozen(net_d):
                    real_logits = [x.detach() for x in _as_list(net_d(real, **kwargs))]
                    fake_logits = _as_list(net_d(fake, **kwargs))
                    total, parts = objective.g_loss(
                        _unlist(real_logits), _unlist(fake_logits), fake, target, pyramid
                    )
        logs = {f"train/{prefix}/loss_g": total.detach()}
        logs.update({f"train/{prefix}/g_{k}": v.detach() for k, v in parts.items()})
        return total, logs

    def finish_step(self, logs: dict[str, torch.Tensor], columns: dict[str, torch.Tensor]) -> None:
        """Log scalars, learning rates and (at the interval) a training panel."""
        self.iteration += 1
        self._seen += 1
        self._step_schedulers()
        for name in self.trained_nets:
            logs[f"lr/{name}"] = torch.tensor(self._optimizer(name).param_groups[0]["lr"])
        bar = {k for k in logs if k.endswith(("loss_g", "loss_d"))}
        self.log_dict({k: v for k, v in logs.items() if k in bar}, prog_bar=True)
        self.log_dict({k: v for k, v in logs.items() if k not in bar})
        if self.panel_every_n_steps and self._seen % self.panel_every_n_steps == 0:
            log_panel(self, "train/panel", columns)

    def deblur(self, blur: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """DBGAN's output and, for a coarse-to-fine generator, its whole pyramid."""
        if hasattr(self.dbgan_g, "forward_pyramid"):
            pyramid = self.dbgan_g.forward_pyramid(blur)
            return pyramid[-1], pyramid
        return self.dbgan_g(blur), None

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
            self.dbgan_g_ema = copy.deepcopy(self.dbgan_g).requires_grad_(False)

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema += (1 - decay) * (net - ema)`` for every parameter; buffers are copied."""
        if self.dbgan_g_ema is None:
            return
        with record_function("ema"):
            weight = 1.0 - self.ema_decay
            net, ema = self.dbgan_g, self.dbgan_g_ema
            for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                p_ema.lerp_(p, weight)
            for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
                b_ema.copy_(b)

    @property
    def deblurrer(self) -> nn.Module:
        """The generator used for validation and export: the EMA copy when kept."""
        return self.dbgan_g_ema if getattr(self, "dbgan_g_ema", None) is not None else self.dbgan_g

    # --- validation -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self._val_lpips = None
        if self.val_lpips and hasattr(self, "dbgan_g"):
            from realblur_gan.losses import LPIPSLoss
            from realblur_gan.pretrained import MissingPretrainedWeights

            try:
                # Outside the module tree (a plain attribute): not trained, not checkpointed.
                object.__setattr__(
                    self, "_val_lpips", LPIPSLoss(weights_path=self.val_lpips_weights)
                )
            except MissingPretrainedWeights as err:
                log.info("val/lpips not logged: %s", err)

    def log_restoration_metrics(
        self, restored: torch.Tensor, blur: torch.Tensor, sharp: torch.Tensor
    ) -> None:
        """Restored vs sharp next to the blurry input vs sharp (the baseline to beat)."""
        restored = restored.clamp(0, 1)
        n = sharp.shape[0]
        self.log("val/psnr", psnr(restored, sharp).mean(), batch_size=n, prog_bar=True)
        self.log("val/ssim", ssim(restored, sharp).mean(), batch_size=n)
        self.log("val/psnr_input", psnr(blur, sharp).mean(), batch_size=n)
        self.log("val/ssim_input", ssim(blur, sharp).mean(), batch_size=n)
        lpips_fn = getattr(self, "_val_lpips", None)
        if lpips_fn is not None:
            lpips_fn.to(restored.device)
            self.log("val/lpips", lpips_fn(restored, sharp), batch_size=n)


def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    # Checkpoints are read with weights_only=True: keep to tensors and builtin types.
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _numpy_state_from_plain(d: dict[str, Any]) -> tuple:
    keys = d["keys"].numpy().astype(np.uint32)
    return (d["name"], keys, d["pos"], d["has_gauss"], d["cached"])


def _python_state_to_plain(state: tuple) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_state_from_plain(state: list[Any]) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def _as_list(x: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return list(x) if isinstance(x, list | tuple) else [x]


def _unlist(xs: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    return xs[0] if len(xs) == 1 else xs


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
        conditional: None (the default) follows ``bgan_d``; a value that disagrees with it is
            refused (``ArgumentError``).
        real_source: Batch key of the blurry images D sees as real.
        content_target: Batch key the content terms compare the fake blur with.
        panel_every_n_steps: Training panel interval.
    """

    trained_nets = ("bgan_g", "bgan_d")

    def __init__(
        self,
        bgan_g: nn.Module,
        bgan_d: nn.Module,
        objective: GANObjective,
        optim: dict[str, Any],
        conditional: bool | None = None,
        real_source: str = "blur_real",
        content_target: str = "sharp",
        panel_every_n_steps: int = 200,
    ) -> None:
        super().__init__(optim, panel_every_n_steps)
        self.bgan_g = bgan_g
        self.bgan_d = bgan_d
        self.bgan_objective = objective
        # The D decides: a flag of its own could only repeat it or contradict it.
        cond_channels = int(getattr(bgan_d, "cond_channels", 0) or 0)
        if conditional is not None and conditional != bool(cond_channels):
            raise ArgumentError(
                "conditional",
                conditional,
                f"bgan_d has cond_channels={cond_channels}; leave the flag out (the D decides) "
                "or pick the other D (model.bgan_d, model.bgan_d_conditional)",
            )
        self.conditional = bool(cond_channels)
        self.real_source = real_source
        self.content_target = content_target

    def forward(self, sharp: torch.Tensor) -> torch.Tensor:
        return self.bgan_g(sharp)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        sharp, real = batch["sharp"], batch[self.real_source]
        cond = sharp if self.conditional else None
        fake = self.bgan_g(sharp)
        logs = self.discriminator_step("bgan_d", self.bgan_objective, real, fake, cond)
        if self.generators_active:
            loss_g, g_logs = self.generator_loss(
                "bgan", self.bgan_objective, real, fake, batch[self.content_target], cond
            )
            with record_function("generator_step"):
                self._step(("bgan_g",), loss_g)
            logs.update(g_logs)
        self.finish_step(logs, {"sharp": sharp, "fake_blur": fake, "real_blur": real})

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with record_function("validation"):
            fake = self.bgan_g(batch["sharp"]).clamp(0, 1)
            # The realistic blur of the same sharp image is one draw of a random process, so this
            # is a proxy for "blurs about as much as real blur", not a score to maximise.
            n = fake.shape[0]
            self.log("val/bgan_psnr_vs_real_blur", psnr(fake, batch["blur"]).mean(), batch_size=n)
            if batch_idx == 0:
                log_panel(
                    self,
                    "val/panel",
                    {"sharp": batch["sharp"], "fake_blur": fake, "real_blur": batch["blur"]},
                )


class DeblurGAN(GANStageModule):
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

    trained_nets = ("dbgan_g", "dbgan_d")

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
        self.dbgan_g = dbgan_g
        self.dbgan_d = dbgan_d
        self.dbgan_objective = objective
        self.synthetic_ratio = 1.0 if bgan_g is None else synthetic_ratio
        self.setup_ema(optim.get("ema_decay"))

    def train(self, mode: bool = True) -> DeblurGAN:
        super().train(mode)
        if self.bgan_g is not None:
            self.bgan_g.eval()  # frozen: no dropout/batch-norm updates either
        return self

    def forward(self, blur: torch.Tensor) -> torch.Tensor:
        return self.dbgan_g(blur)

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
        logs = self.discriminator_step("dbgan_d", self.dbgan_objective, sharp, restored)
        if self.generators_active:
            loss_g, g_logs = self.generator_loss(
                "dbgan", self.dbgan_objective, sharp, restored, sharp, pyramid=pyramid
            )
            with record_function("generator_step"):
                self._step(("dbgan_g",), loss_g)
            self.update_ema()
            logs.update(g_logs)
        self.finish_step(
            logs,
            {
                "sharp": sharp,
                "fake_blur": blur,
                "real_blur": batch["blur_real"],
                "restored": restored,
            },
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with record_function("validation"):
            restored = self.deblurrer(batch["blur"])
            self.log_restoration_metrics(restored, batch["blur"], batch["sharp"])
            if batch_idx == 0:
                fake = self.bgan_g(batch["sharp"]) if self.bgan_g is not None else batch["blur"]
                log_panel(self, "val/panel", _val_columns(batch, fake, restored))


class JointGAN(GANStageModule):
    """All four nets in one step, each with its own optimiser.

    Order per batch: BGAN G forward once -> BGAN D step -> DBGAN G forward once on the fake
    blur -> DBGAN D step -> one backward of both generator losses, stepping both generators.

    Args:
        bgan_g, bgan_d, dbgan_g, dbgan_d: The four nets.
        bgan_objective: BGAN's adversarial (vs real blur) + content (vs sharp) terms.
        dbgan_objective: DBGAN's adversarial (vs sharp) + content (vs sharp) terms.
        optim: See ``GANStageModule``.
        synthetic_ratio: Fraction of DBGAN's inputs taken from the synthetic pairs.
        dbgan_grad_to_bgan: Let DBGAN's loss back-propagate into BGAN's generator.
        panel_every_n_steps: Training panel interval.
    """

    trained_nets = ("bgan_g", "bgan_d", "dbgan_g", "dbgan_d")

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
        panel_every_n_steps: int = 200,
    ) -> None:
        super().__init__(optim, panel_every_n_steps)
        self.bgan_g, self.bgan_d = bgan_g, bgan_d
        self.dbgan_g, self.dbgan_d = dbgan_g, dbgan_d
        self.bgan_objective = bgan_objective
        self.dbgan_objective = dbgan_objective
        self.synthetic_ratio = synthetic_ratio
        self.dbgan_grad_to_bgan = dbgan_grad_to_bgan
        self.setup_ema(optim.get("ema_decay"))

    def forward(self, blur: torch.Tensor) -> torch.Tensor:
        return self.dbgan_g(blur)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        sharp, blur_real = batch["sharp"], batch["blur_real"]
        fake_blur = self.bgan_g(sharp)
        logs = self.discriminator_step("bgan_d", self.bgan_objective, blur_real, fake_blur)

        deblur_in = fake_blur if self.dbgan_grad_to_bgan else fake_blur.detach()
        deblur_in = dbgan_input(deblur_in, batch.get("blur_syn"), self.synthetic_ratio)
        restored, pyramid = self.deblur(deblur_in)
        logs.update(self.discriminator_step("dbgan_d", self.dbgan_objective, sharp, restored))

        if self.generators_active:
            loss_b, logs_b = self.generator_loss(
                "bgan", self.bgan_objective, blur_real, fake_blur, sharp
            )
            loss_d, logs_d = self.generator_loss(
                "dbgan", self.dbgan_objective, sharp, restored, sharp, pyramid=pyramid
            )
            with record_function("generator_step"):
                self._step(("bgan_g", "dbgan_g"), loss_b + loss_d)
            self.update_ema()
            logs.update(logs_b)
            logs.update(logs_d)
        self.finish_step(
            logs,
            {"sharp": sharp, "fake_blur": fake_blur, "real_blur": blur_real, "restored": restored},
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with record_function("validation"):
            restored = self.deblurrer(batch["blur"])
            self.log_restoration_metrics(restored, batch["blur"], batch["sharp"])
            if batch_idx == 0:
                fake = self.bgan_g(batch["sharp"])
                log_panel(self, "val/panel", _val_columns(batch, fake, restored))


def _val_columns(
    batch: dict[str, Any], fake_blur: torch.Tensor, restored: torch.Tensor
) -> dict[str, torch.Tensor]:
    return {
        "sharp": batch["sharp"],
        "fake_blur": fake_blur,
        "real_blur": batch["blur"],
        "restored": restored,
    }


__all__ = [
    "BlurGAN",
    "DeblurGAN",
    "GANStageModule",
    "JointGAN",
    "dbgan_input",
    "frozen",
    "mix_synthetic",
]
