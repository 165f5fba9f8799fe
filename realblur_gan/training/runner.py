"""Run a scheme: its stages in order, one Trainer each, handing weights over by checkpoint path."""

from __future__ import annotations

import inspect
import logging
import os
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from realblur_gan.errors import UserError
from realblur_gan.ownership import FolderLock, claim_folder
from realblur_gan.training.callbacks import FiniteGuard, PeriodicCheckpoint, RNGState
from realblur_gan.training.config import (
    ConfigError,
    available_schemes,
    instantiate_checked,
    stage_order,
    stage_settings,
    validate_config,
)
from realblur_gan.weights.checkpoints import (
    AtomicCheckpointIO,
    find_resume_checkpoint,
    load_net_weights,
)
from realblur_gan.weights.interpolation import weights_fingerprint

log = logging.getLogger(__name__)

DONE_MARKER = "DONE"
NET_NAMES = ("bgan_g", "bgan_d", "dbgan_g", "dbgan_d")


class NoSchemeError(UserError, ValueError):
    """The config has no ``stages``: the user did not pick a scheme."""

    def __init__(self) -> None:
        names = " or ".join(f"+scheme={s}" for s in available_schemes())
        super().__init__(f"no training scheme chosen: add {names} to the command")


@dataclass
class RunResult:
    """What a run produced, for the summary and for callers (tests, sweeps)."""

    scheme: str
    output_dir: Path
    checkpoints: dict[str, Path] = field(default_factory=dict)
    wandb_dirs: list[Path] = field(default_factory=list)
    csv_dirs: list[Path] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    val_images: int = 0
    rank_zero: bool = True


class ResumeError(UserError, FileNotFoundError):
    """``resume=`` names no run folder with checkpoints."""


def run(cfg: DictConfig) -> RunResult:
    """Check ``cfg``, then train every stage of its scheme and validate the final DBGAN.

    Args:
        cfg: The composed config (``conf/train.yaml`` + a scheme), by ``compose()`` or the CLI:
            the same overrides mean the same run either way.

    Returns:
        Paths of the checkpoints and logs, and the final validation metrics.
    """
    if "stages" not in cfg:
        raise NoSchemeError()
    validate_config(cfg)  # out-of-range numbers: one line naming the key, first
    return train_checked(cfg)


def train_checked(cfg: DictConfig) -> RunResult:
    """:func:`run` for a config :func:`~realblur_gan.training.config.validate_config` has passed
    (the CLI
    checks before importing Lightning, and so does not check twice)."""
    _single_log_handler()
    _tips_once()
    start_time = time.perf_counter()
    out_dir = resume_dir(cfg) if cfg.resume else Path(cfg.paths.output_dir)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    owner = _claim_run_dir(out_dir, bool(cfg.resume))
    try:
        return _run_stages(cfg, out_dir, start_time)
    finally:
        if owner is not None:
            owner.release()


def _claim_run_dir(out_dir: Path, resuming: bool) -> FolderLock | None:
    """Lock the run dir for this run (rank 0 only: DDP's other ranks share it with rank 0)."""
    if any(int(os.environ.get(v, "0") or 0) > 0 for v in ("RANK", "LOCAL_RANK", "NODE_RANK")):
        out_dir.mkdir(parents=True, exist_ok=True)
        return None
    if resuming:
        fix = "resume another run"
    else:
        fix = "pass another folder as hydra.run.dir=... (the default is new for every launch)"
    return claim_folder(out_dir, "run dir", fix)


def stage_seed(seed: int, stage: str) -> int:
    """The seed a stage starts from: a function of the run's seed and the stage's name only.

    Every stage is seeded afresh, so its random draws (net initialisation, BGAN's noise, the
    synthetic mix) never depend on what the stages before it drew: a run resumed after a kill
    between two stages, or started at a later stage, continues exactly as an uninterrupted one.
    """
    return (seed * 0x9E3779B1 + zlib.crc32(stage.encode())) % 2**32


def _run_stages(cfg: DictConfig, out_dir: Path, start_time: float) -> RunResult:
    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)

    result = RunResult(scheme=str(cfg.scheme_name), output_dir=out_dir)
    order = stage_order(cfg)
    if cfg.start_stage is not None and cfg.start_stage not in order:
        raise ConfigError(f"start_stage={cfg.start_stage!r} is not one of {order}")
    first = order.index(cfg.start_stage) if cfg.start_stage is not None else 0
    check_stage_trainers(cfg, order[first:])  # a typo fails before any stage trains
    datamodule = instantiate(cfg.data)

    for index, name in enumerate(order):
        stage_dir = out_dir / "checkpoints" / name
        if index < first:
            continue
        if cfg.resume and (stage_dir / DONE_MARKER).exists():
            log.info("stage %s already finished: skipped (resume)", name)
            result.checkpoints[name] = stage_dir / "last.ckpt"
            continue
        is_last = index == len(order) - 1
        L.seed_everything(stage_seed(cfg.seed, name), workers=True, verbose=False)
        _run_stage(cfg, name, stage_dir, datamodule, result, is_last)

    result.seconds = time.perf_counter() - start_time
    return result


def build_stage(
    cfg: DictConfig,
    name: str,
    checkpoints: dict[str, Path] | None = None,
) -> L.LightningModule:
    """Build stage ``name``'s LightningModule exactly as a training run does.

    The one place a stage is made (training, tests and benchmarks all call it): the module from
    its config with the stage's effective optimiser settings (:func:`stage_optim_config`), the
    nets' resolved configs for inference, the ``init_from`` weights and the perf switches.

    Args:
        cfg: The composed config (``conf/train.yaml`` + a scheme).
        name: A key of ``cfg.stages``.
        checkpoints: Checkpoints of earlier stages by stage name; other ``init_from`` sources
            are named pretrained models or paths (:func:`init_source`).

    Returns:
        The module, ready for ``Trainer.fit``.
    """
    stage = cfg.stages[name]
    log.info("stage %s: building", name)
    module_cfg = stage.module
    if "optim" in module_cfg:
        optim = stage_optim_config(cfg, name)
        log.info("stage %s: optim %s", name, describe_settings(optim))
        module_cfg = OmegaConf.merge(module_cfg, {"optim": optim})
    # A value a constructor refuses (a net's depth, a loss's factor, a misspelt `_target_`)
    # is the user's to fix: one line naming its key. Anything else is a bug.
    module = instantiate_checked(module_cfg, cfg)
    module.panel_dir = str(Path(cfg.paths.output_dir) / "panels" / name)
    module.net_configs = {
        net: OmegaConf.to_container(stage.module[net], resolve=True)
        for net in NET_NAMES
        if stage.module.get(net) is not None
    }
    if getattr(module, "dbgan_g_ema", None) is not None:
        module.net_configs["dbgan_g_ema"] = module.net_configs["dbgan_g"]
    for net_name, source in (stage.get("init_from") or {}).items():
        load_net_weights(module, net_name, init_source(str(source), checkpoints or {}))
        # Saved in every checkpoint: export --start checks it is given these same weights.
        module.init_sources[net_name] = {
            "source": str(source),
            "fingerprint": weights_fingerprint(getattr(module, net_name).state_dict()),
        }
    apply_perf_switches(module, cfg.get("perf") or {})
    return module


def init_source(source: str, checkpoints: dict[str, Path]) -> Path:
    """The file an ``init_from`` entry names: an earlier stage's checkpoint (by stage name), a
    named pretrained model (``realblur-dbgan``, the packaged DBGAN: fine-tuning starts there;
    its SHA-256 is checked) or a path (``.ckpt`` or exported ``.safetensors``)."""
    from realblur_gan.weights.model_zoo import MODELS, verified_path

    if source in checkpoints:
        return checkpoints[source]
    if source in MODELS:
        return verified_path(source)
    return Path(source)


def stage_trainer_config(cfg: DictConfig, name: str) -> DictConfig:
    """Stage ``name``'s Trainer config: its own ``trainer`` block merged over the global one
    (see :func:`realblur_gan.training.config.stage_settings`).

    Args:
        cfg: The composed config.
        name: A key of ``cfg.stages``.

    Returns:
        A resolved ``_target_`` config for the Trainer (the run adds loggers and callbacks).
    """
    return stage_settings(cfg, name, "trainer")


def stage_optim_config(cfg: DictConfig, name: str) -> DictConfig:
    """Stage ``name``'s optimiser settings, by the same rule as :func:`stage_trainer_config`."""
    return stage_settings(cfg, name, "optim")


# Trainer arguments the run passes itself: a config value would be silently replaced.
_SET_BY_RUN = frozenset({"default_root_dir", "logger", "callbacks", "plugins"})


def check_stage_trainers(cfg: DictConfig, names: Sequence[str]) -> None:
    """Refuse, before any stage trains, a trainer key that the Trainer does not take.

    Raises:
        ConfigError: Naming the key as the user would override it.
    """
    for name in names:
        settings = stage_trainer_config(cfg, name)
        target = str(settings.get("_target_", "lightning.pytorch.Trainer"))
        params = inspect.signature(get_class(target)).parameters
        any_key = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        own = cfg.stages[name].get("trainer") or {}
        for key in map(str, settings):
            where = f"stages.{name}.trainer.{key}" if key in own else f"trainer.{key}"
            if key in _SET_BY_RUN:
                raise ConfigError(f"{where}: the training run sets it itself; remove it")
            if not key.startswith("_") and key not in params and not any_key:
                raise ConfigError(f"{where}: {target} has no such argument; check the spelling")


def describe_settings(settings: DictConfig) -> str:
    """One line ``key=value, ...``; a ``_target_`` node reads ``Class(arg=value, ...)``."""

    def text(value: Any) -> str:
        if isinstance(value, dict):
            args = ", ".join(f"{k}={text(v)}" for k, v in value.items() if not k.startswith("_"))
            if "_target_" in value:
                return f"{str(value['_target_']).rsplit('.', 1)[-1]}({args})"
            return "{" + args + "}"
        return str(value)

    plain = OmegaConf.to_container(settings, resolve=True)
    return ", ".join(f"{k}={text(v)}" for k, v in plain.items() if not str(k).startswith("_"))


def apply_perf_switches(module: L.LightningModule, perf: Any) -> None:
    """channels-last and torch.compile on the module's nets, as configured."""
    if perf.get("channels_last"):
        module.to(memory_format=torch.channels_last)
        module.channels_last = True
    if perf.get("compile"):
        for name in (*NET_NAMES, "dbgan_g_ema"):
            net = getattr(module, name, None)
            if isinstance(net, torch.nn.Module):
                net.compile()  # in place, unlike torch.compile(): state-dict keys unchanged


def _single_log_handler() -> None:
    """Remove Lightning's own console handlers when the root logger has one (Hydra's).

    ``import lightning`` puts a handler on the ``lightning`` logger, and the subpackages add
    theirs when imported before logging is configured; every Lightning line (the model summary
    too) would then print once per handler on its way up to the root.
    """
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler):
                logger.removeHandler(handler)
                # Lightning 2.6 also stops its records at its own logger: without its handler
                # they must go on up to the root's, or they are lost.
                logger.propagate = True


class _OnceFilter(logging.Filter):
    """Passes each of Lightning's "💡 Tip" lines once per process, other records always.

    Every stage builds its own ``Trainer``, and each printed the same tips again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("💡 Tip"):
            return True
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _tips_once() -> None:
    """Install :class:`_OnceFilter` on the logger Lightning's tips come from (once)."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _OnceFilter) for f in logger.filters):
        logger.addFilter(_OnceFilter())


def resume_dir(cfg: DictConfig) -> Path:
    """The run folder to continue: ``resume=<run dir>``, or with ``resume=true`` the newest
    earlier run of this scheme under the same parent folder that has checkpoints."""
    if cfg.resume is not True:
        path = Path(str(cfg.resume))
        if not (path / "checkpoints").is_dir():
            raise ResumeError(
                f"{path}: no checkpoints/ folder to resume from; pass resume=<run dir> of an "
                "earlier run (e.g. outputs/joint/2026-01-01_12-00-00)"
            )
        return path
    current = Path(cfg.paths.output_dir)
    earlier = sorted(
        p for p in current.parent.glob("*") if p != current and (p / "checkpoints").is_dir()
    )
    if not earlier:
        raise ResumeError(
            f"{current.parent}: no earlier run with checkpoints to resume; pass "
            "resume=<run dir> explicitly"
        )
    log.info("resuming %s", earlier[-1])
    return earlier[-1]


def _run_stage(
    cfg: DictConfig,
    name: str,
    stage_dir: Path,
    datamodule: L.LightningDataModule,
    result: RunResult,
    validate_at_end: bool,
) -> None:
    module = build_stage(cfg, name, result.checkpoints)
    trainer_cfg = stage_trainer_config(cfg, name)
    log.info("stage %s: trainer %s", name, describe_settings(trainer_cfg))
    if hasattr(datamodule, "synthetic_pairs"):
        # A stage that never reads the synthetic pairs should not pay for blurring them.
        datamodule.synthetic_pairs = getattr(module, "reads_synthetic_pairs", True)

    loggers = _build_loggers(cfg, name)
    last = stage_dir / "last.ckpt"
    checkpoint = ModelCheckpoint(
        dirpath=stage_dir,
        filename="epoch{epoch:03d}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=1,
        # Without this, an epoch-end save finding the periodic last.ckpt goes to last-v1.ckpt
        # and everything reading last.ckpt (summary, init_from, resume) gets an older model.
        enable_version_counter=False,
    )
    trainer: L.Trainer = instantiate(
        trainer_cfg,
        default_root_dir=str(cfg.paths.output_dir),
        logger=loggers or False,
        # The guard first: it stops the batch before any checkpoint of it is written.
        callbacks=[
            FiniteGuard(name, last),
            checkpoint,
            PeriodicCheckpoint(stage_dir, cfg.checkpoint_every_n_batches),
            RNGState(),
        ],
        plugins=[AtomicCheckpointIO()],
    )
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    # The newest intact checkpoint; damaged ones are passed over with a warning naming them.
    resume_from = find_resume_checkpoint(stage_dir) if cfg.resume else None
    ckpt_path = str(resume_from) if resume_from is not None else None
    try:
        with warnings.catch_warnings():
            # Nets frozen on purpose stay in eval mode (the dbgan stage's BGAN, pretrained loss
            # backbones); Lightning's warning about them would only be noise.
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        if not last.exists():  # fast_dev_run writes no checkpoint: save one for the hand-over
            trainer.save_checkpoint(last, weights_only=False)
        (stage_dir / DONE_MARKER).write_text("finished\n")
        result.checkpoints[name] = last
        if validate_at_end and cfg.final_validation and hasattr(module, "dbgan_g"):
            trainer.validate(module, datamodule=datamodule, verbose=False)
            result.metrics = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")
            }
            # The images scored, not the split's size: limit_val_batches may stop early.
            result.val_images = int(result.metrics.get("val/images", 0))
    finally:
        result.rank_zero = trainer.is_global_zero
        _close_loggers(loggers, result, trainer.is_global_zero)


def _build_loggers(cfg: DictConfig, stage: str) -> list[Any]:
    loggers = []
    tags = [str(cfg.scheme_name), stage]
    for key, spec in (cfg.get("logger") or {}).items():
        if not isinstance(spec, DictConfig) or "_target_" not in spec:
            continue
        target = str(spec._target_)
        if target.endswith("WandbLogger"):
            Path(spec.save_dir).mkdir(parents=True, exist_ok=True)
            group = spec.get("group") or _run_group(Path(cfg.paths.output_dir))
            logger = instantiate(spec, name=f"{cfg.scheme_name}/{stage}", tags=tags, group=group)
            # Lightning passes `anonymous` to wandb.init whatever its value, and wandb warns
            # that the deprecated setting is set; wandb's advice is to not set it at all.
            getattr(logger, "_wandb_init", {}).pop("anonymous", None)
            loggers.append(logger)
        elif target.endswith("CSVLogger"):
            loggers.append(instantiate(spec, version=stage))
        else:
            log.info("logger %s: using as configured", key)
            loggers.append(instantiate(spec))
    return loggers


def _run_group(out_dir: Path) -> str:
    """W&B group: every stage of a run together, and every job of a multirun sweep together
    (their run dirs share the sweep folder)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return f"sweep-{out_dir.parent.name}"
    except ImportError:  # pragma: no cover - hydra is a dependency
        pass
    return f"{out_dir.parent.name}-{out_dir.name}"


def _close_loggers(loggers: list[Any], result: RunResult, rank_zero: bool) -> None:
    for logger in loggers:
        if not rank_zero:  # other DDP ranks hold dummy experiments
            continue
        if type(logger).__name__ == "WandbLogger":
            import wandb

            run = logger.experiment
            run_dir = Path(run.dir).parent if getattr(run, "dir", None) else None
            # Finish every stage's run, even after an exception: sweeps otherwise hang.
            wandb.finish()
            if run_dir is not None:
                result.wandb_dirs.append(run_dir)
        elif type(logger).__name__ == "CSVLogger":
            logger.finalize("success")
            result.csv_dirs.append(Path(logger.log_dir))


def format_summary(result: RunResult) -> str:
    """A short human summary: where things went and DBGAN vs the blurry input."""
    lines = [
        f"realblur-gan: scheme '{result.scheme}' finished in {result.seconds / 60:.1f} min",
        f"  run dir      {result.output_dir}",
        f"  config       {result.output_dir / 'config.yaml'}",
    ]
    for stage, path in result.checkpoints.items():
        lines.append(f"  checkpoint   {stage}: {path}")
    for path in result.wandb_dirs:
        lines.append(f"  W&B run      {path}  (upload later: wandb sync {path})")
    for path in result.csv_dirs:
        lines.append(f"  CSV metrics  {path / 'metrics.csv'}")
    m = result.metrics
    if "val/psnr" in m:
        gain = m["val/psnr"] - m.get("val/psnr_input", float("nan"))
        lines += [
            f"  DBGAN on the validation split ({result.val_images} images):",
            "                     PSNR (dB)   SSIM",
            f"    blurry input     {m.get('val/psnr_input', float('nan')):9.2f}"
            f"   {m.get('val/ssim_input', float('nan')):.4f}",
            f"    restored         {m['val/psnr']:9.2f}   {m.get('val/ssim', float('nan')):.4f}",
            f"    gain             {gain:+9.2f}",
        ]
    return "\n".join(lines)
