"""Hydra/OmegaConf glue: the location of the config tree, a run's stages and the precedence of
their settings, and the checks that turn a bad config value into one line naming its key.

The configs use OmegaConf's own resolvers only (``oc.env``, ``oc.select``): a config composes
with plain Hydra, with nothing to register first.
"""

from __future__ import annotations

import difflib
import importlib
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from realblur_gan.errors import ArgumentError, UserError, check_range


def _config_dir() -> Path:
    """The config tree: the copy a wheel ships (``realblur_gan/conf``), else the checkout's
    top-level ``conf/`` (a clone, or an editable install)."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "conf"
    return shipped if (shipped / "train.yaml").is_file() else package.parent / "conf"


CONFIG_DIR = _config_dir()

# What ``wandb_mode`` (and so ``WANDB_MODE``, its default) may say: wandb.init's modes.
WANDB_MODES = ("offline", "online", "disabled", "shared")


def available_schemes() -> list[str]:
    """Names of the training schemes shipped in ``conf/scheme``."""
    return sorted(p.stem for p in (CONFIG_DIR / "scheme").glob("*.yaml"))


def scheme_stages(scheme: str) -> list[str]:
    """The stages scheme ``scheme`` lists, in order, read from its file without composing.

    Args:
        scheme: A name from :func:`available_schemes`.

    Returns:
        Stage names (``/stage@stages.<name>`` entries of the scheme's defaults list).
    """
    path = CONFIG_DIR / "scheme" / f"{scheme}.yaml"
    if not path.is_file():
        return []
    entries = OmegaConf.load(path).get("defaults") or []
    names = []
    for entry in entries:
        for key in entry if isinstance(entry, DictConfig) else []:
            if str(key).startswith("/stage@stages."):
                names.append(str(key).removeprefix("/stage@stages."))
    return names


def stage_order(cfg: DictConfig) -> list[str]:
    """The stages a run trains, in the order it trains them.

    The order is stated once, by the scheme: its defaults list composes ``stages`` one entry
    at a time and the dict keeps that order. ``stage_order=[dbgan]`` on the command line picks
    a subset; it must keep the scheme's order, because a stage loads the nets of the stages
    before it by name (``init_from``).

    Args:
        cfg: The composed config (``conf/train.yaml`` + a scheme).

    Returns:
        Stage names, keys of ``cfg.stages``.

    Raises:
        ConfigError: ``stage_order`` names no stage, a stage twice, an unknown stage, or breaks
            the scheme's order.
    """
    names = [str(name) for name in cfg.get("stages") or {}]
    chosen = cfg.get("stage_order")
    if chosen is None:
        return names
    # `stage_order=dbgan` (no brackets) means the one stage.
    picked = [str(chosen)] if isinstance(chosen, str) else [str(name) for name in chosen]
    unknown = [name for name in picked if name not in names]
    typed = f"stage_order=[{','.join(picked)}]"
    if unknown:
        raise ConfigError(
            f"{typed}: {', '.join(unknown)} is not a stage of this scheme; pick from {names}"
        )
    if not picked or picked != sorted(set(picked), key=names.index):
        raise ConfigError(
            f"{typed}: list one or more stages, each once, in the scheme's order {names} "
            "(or stage_order=null for all of them)"
        )
    return picked


# --------------------------------------------------------------------------------------------------
# A stage's effective trainer and optimiser settings: one precedence rule, read off the config
# --------------------------------------------------------------------------------------------------

# Trainer keys that say how long a stage trains: each stage owns its own (conf/stage/*.yaml).
STAGE_LENGTH_KEYS = ("max_epochs", "max_steps")


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def stage_settings(cfg: DictConfig, name: str, block: str) -> DictConfig:
    """Stage ``name``'s effective ``block`` (``"trainer"`` or ``"optim"``).

    The stage's own block (``stages.<name>.<block>``, from ``conf/stage/<name>.yaml`` and what
    was typed for it) is merged over the global block (``conf/trainer``, ``conf/optim``: the
    chosen group option and what was typed for it). The rule reads the composed config alone,
    so a config composed with ``compose()`` means what the same overrides mean on the command
    line. The shipped stage files set only their lengths, so a global key typed once
    (``optim.generator.lr=2e-4``) reaches every stage; a stage key (``stages.dbgan.optim...``)
    beats it for that stage. Lengths are per stage only (:data:`STAGE_LENGTH_KEYS`; a global
    one is refused by :func:`validate_config`).

    Keys the global block lacks are allowed in a stage's block (``limit_train_batches``,
    ``max_time``: the Trainer takes many more arguments than the yaml lists); the training run
    checks the result against the Trainer's arguments before any stage starts.

    Args:
        cfg: The composed config.
        name: A key of ``cfg.stages``.
        block: ``"trainer"`` or ``"optim"``.

    Returns:
        A resolved config, detached from ``cfg`` and open to new keys.
    """
    own = _plain(cfg.stages[name].get(block)) or {}
    merged = OmegaConf.merge(OmegaConf.create(_plain(cfg.get(block)) or {}), own)
    OmegaConf.set_struct(merged, False)
    return merged


# --------------------------------------------------------------------------------------------------
# Validation: bad numbers are refused when the config is built, naming the key and the range
# --------------------------------------------------------------------------------------------------


class ConfigError(UserError, ValueError):
    """A config value is out of range; the message names the key, the value and what is allowed."""


_INTERPOLATION = re.compile(r"\$\{([\w.]+)\}")
_LOCATING = re.compile(r"Error locating target '([^']+)'")


def typed_key(cfg: DictConfig, key: str) -> str:
    """The key a user would type for ``key``: node interpolations followed to their source.

    A stage's nets and objectives are interpolations (``dbgan_g: ${model.dbgan_g}``), so
    ``stages.dbgan.module.dbgan_g.depth`` is set as ``model.dbgan_g.depth``.

    Args:
        cfg: The composed config.
        key: A dotted key of ``cfg``.

    Returns:
        ``key`` with its longest interpolated prefix replaced by the interpolation's source.
    """
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            break
        if OmegaConf.is_interpolation(node, part):
            raw = str(OmegaConf.to_container(node, resolve=False)[part])
            match = _INTERPOLATION.fullmatch(raw)
            if match:
                return typed_key(cfg, ".".join([match.group(1), *parts[i + 1 :]]))
            break
        node = node[part]
    return key


def _full_key(text: str) -> str | None:
    """The ``full_key`` Hydra appends to an instantiate error's message (its last line)."""
    head, sep, tail = text.rpartition("\nfull_key: ")
    return tail.strip() if sep and head else None


def _missing_target(target: str) -> str | None:
    """Why ``target`` names nothing and the fix (the nearest name), or None when it exists or
    when importing it failed for another reason (a broken module is a bug, not a typo)."""
    parts = target.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:end])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and target.startswith(f"{err.name}."):
                continue  # the target's own module path is misspelt: try a shorter one
            return None
        except Exception:
            return None
        for i in range(end, len(parts)):
            if not hasattr(obj, parts[i]):
                public = [n for n in dir(obj) if not n.startswith("_")]
                close = difflib.get_close_matches(parts[i], public, n=1)
                owner = ".".join(parts[:i])
                fix = f"did you mean {owner}.{close[0]}?" if close else "check the spelling"
                return f"{owner} has no {parts[i]!r}; {fix}"
            obj = getattr(obj, parts[i])
        return None
    return f"no module {parts[0]!r}; check the spelling"


def config_mistake(err: BaseException, cfg: DictConfig) -> ConfigError | None:
    """One line for the config value behind a failed ``instantiate``, or None for a bug.

    Two mistakes are recognised: a constructor refusing an argument's value
    (:class:`~realblur_gan.errors.ArgumentError`) and a ``_target_`` that names nothing.
    Anything else (a ``TypeError`` inside a constructor, a broken import) is a bug and keeps its
    traceback. The key comes from Hydra's wrapping ``InstantiationException``s: each message ends
    in ``full_key: <key>``, absolute at the outermost and relative to the object's own config
    for one built inside another constructor (a loss term inside ``GANObjective``, which is not
    recursive), and it is followed back to the key the user types (:func:`typed_key`).

    Args:
        err: What ``instantiate`` raised.
        cfg: The composed config it built from.

    Returns:
        A :class:`ConfigError` whose message names the key, the value and the fix.
    """
    from hydra.errors import InstantiationException

    key = ""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ArgumentError):
            return argument_mistake(seen, key, cfg)
        if isinstance(seen, InstantiationException):
            text = str(seen)
            inner = _full_key(text)
            if inner:
                absolute = not key or inner.split(".", 1)[0] in cfg
                key = inner if absolute else f"{key}.{inner}"
            located = _LOCATING.match(text)
            if located:
                target = located.group(1)
                why = _missing_target(target)
                if why is None:
                    return None
                where = typed_key(cfg, f"{key}._target_" if key else "_target_")
                return ConfigError(f"{where}={target!r}: {why}")
        seen = seen.__cause__
    return None


def argument_mistake(err: ArgumentError, key: str, cfg: DictConfig) -> ConfigError:
    """A constructor's :class:`~realblur_gan.errors.ArgumentError` as one line naming the key
    the user types: ``key`` is the config node the constructor was built from.
    """
    where = f"{key}.{err.argument}" if key else err.argument
    return ConfigError(f"{typed_key(cfg, where)}={err.value!r}: {err.allowed}")


def instantiate_checked(node: Any, cfg: DictConfig) -> Any:
    """``hydra.utils.instantiate(node)``, with a config mistake behind a failure re-raised as one
    :class:`ConfigError` line naming its key (:func:`config_mistake`); a bug is re-raised as is.

    Args:
        node: A ``_target_`` node of ``cfg`` (or one merged from it).
        cfg: The composed config, to name the key the user types.

    Returns:
        The built object.
    """
    from hydra.utils import instantiate

    try:
        return instantiate(node)
    except Exception as err:
        mistake = config_mistake(err, cfg)
        if mistake is None:
            raise
        raise mistake from err


_NET_KEYS = ("bgan_g", "bgan_d", "dbgan_g", "dbgan_d")
_LARGEST_CROP = 4096


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check(cfg: DictConfig, key: str, **bounds: Any) -> None:
    """Refuse ``cfg.<key>`` unless it is a number within ``bounds`` (absent keys pass).

    Args:
        cfg: The composed config.
        key: A dotted key of ``cfg``.
        **bounds: :func:`~realblur_gan.errors.check_range`'s (``low``, ``high``, ``integer``...).
    """
    value = OmegaConf.select(cfg, key, default="__absent__")
    if value == "__absent__":
        return
    try:
        check_range(key, value, **bounds)
    except ArgumentError as err:
        raise ConfigError(f"{err}; fix the override") from None


def _check_kernel_size(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return
    sizes = [value] if _number(value) is not None else list(value)
    ok = 1 <= len(sizes) <= 2 and all(
        _number(s) is not None and s == int(s) and s >= 1 for s in sizes
    )
    if not ok or sizes[0] > sizes[-1]:
        raise ConfigError(
            f"{key}={OmegaConf.to_container(value) if isinstance(value, ListConfig) else value!r}: "
            "must be a kernel side >= 1 or a range [low, high] with 1 <= low <= high"
        )


def _forward_on_meta(net: Any, channels: int, size: int) -> None:
    """Push a ``size`` crop through a net built on the meta device."""
    import torch

    with torch.device("meta"):
        x = torch.empty(1, channels, size, size)
        cond = int(getattr(net, "cond_channels", 0) or 0)
        with torch.no_grad():
            net(x, cond=torch.empty(1, cond, size, size)) if cond else net(x)


def _check_crop(cfg: DictConfig) -> None:
    """The training crop must fit every net: a multiple of the generators' stride and at least
    the discriminators' smallest input. Checked by a forward pass on the meta device."""
    import torch

    crop = OmegaConf.select(cfg, "data.crop_size", default=None)
    channels = OmegaConf.select(cfg, "model.image_channels", default=3)
    if not isinstance(crop, int) or not isinstance(channels, int):
        return
    nodes: dict[str, DictConfig] = {}
    for stage_name, stage in (cfg.get("stages") or {}).items():
        for key, node in (stage.get("module") or {}).items():
            if key.startswith(_NET_KEYS) and isinstance(node, DictConfig) and "_target_" in node:
                nodes.setdefault(f"stages.{stage_name}.module.{key}", node)
    # Every net is built first, so a value its constructor refuses is reported as that value,
    # not as a crop no net takes.
    with torch.device("meta"):  # no memory, no compute
        nets = {key: instantiate_checked(node, cfg) for key, node in nodes.items()}
    for key, net in nets.items():
        try:
            _forward_on_meta(net, channels, crop)
        except NotImplementedError:
            continue  # an op without a meta kernel: no verdict, the run will tell
        except Exception as err:
            reason = " ".join(str(err).split(";")[0].split())[:160]
            sizes = range(8, _LARGEST_CROP + 1, 8)
            fits = next((s for s in sizes if all(_fits(n, channels, s) for n in nets.values())), 0)
            hint = f"; the smallest crop all nets take is data.crop_size={fits}" if fits else ""
            raise ConfigError(
                f"data.crop_size={crop}: {key} ({nodes[key]._target_}) cannot train on it "
                f"({reason}){hint}"
            ) from None


def _fits(net: Any, channels: int, size: int) -> bool:
    try:
        _forward_on_meta(net, channels, size)
    except Exception:
        return False
    return True


def _check_objectives(cfg: DictConfig) -> None:
    """Build every stage objective's loss terms on the meta device, so that a value a loss
    refuses or a misspelt ``_target_`` is reported before the first stage trains, not when its
    own stage starts (hours later in a long run).

    Only recognised config mistakes (:func:`config_mistake`) are reported here: a missing
    pretrained backbone or anything else surfaces, as before, when the stage is built.
    """
    import torch
    from hydra.utils import instantiate

    from realblur_gan.training.objective import check_weights

    checked: set[str] = set()
    for name, stage in (cfg.get("stages") or {}).items():
        for key, node in (stage.get("module") or {}).items():
            target = node.get("_target_") if isinstance(node, DictConfig) else None
            if not str(target).endswith("GANObjective"):
                continue
            source = typed_key(cfg, f"stages.{name}.module.{key}")
            if source in checked:  # one objective shared by several stages
                continue
            checked.add(source)
            try:
                check_weights(node.get("adv_weight", 1.0), node.get("terms"))
            except ArgumentError as err:
                raise argument_mistake(err, f"stages.{name}.module.{key}", cfg) from None
            terms = [t for t in (node.get("terms") or {}).values() if isinstance(t, DictConfig)]
            specs = [node.get("adversarial")]
            specs += [t.get("fn") for t in terms if _number(t.get("weight", 1.0)) != 0.0]
            for spec in specs:
                if not isinstance(spec, DictConfig) or "_target_" not in spec:
                    continue
                try:
                    with torch.device("meta"):
                        instantiate(spec)
                except Exception as err:
                    mistake = config_mistake(err, cfg)
                    if mistake is not None:
                        raise mistake from err


def _check_data(cfg: DictConfig) -> None:
    """Build the data module, so that a value it refuses (a batch size, a crop, a ratio) is
    reported naming its key before anything trains. Building reads no file: the folders are
    listed in ``setup``. The data module's constructor is the one place its bounds are checked.
    """
    node = cfg.get("data")
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    instantiate_checked(node, cfg)


def _missing_keys(node: DictConfig | ListConfig, prefix: str) -> list[str]:
    """Keys holding ``???``, found without resolving interpolations (those may need Hydra's
    runtime, which a config made by ``compose()`` lacks)."""
    keys = list(node.keys()) if isinstance(node, DictConfig) else range(len(node))
    found = []
    for key in keys:
        where = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}{'.' * bool(prefix)}{key}"
        if OmegaConf.is_missing(node, key):
            found.append(where)
        elif not OmegaConf.is_interpolation(node, key):
            child = node[key]
            if isinstance(child, DictConfig | ListConfig):
                found += _missing_keys(child, where)
    return found


def _check_missing(cfg: DictConfig) -> None:
    """Every ``???`` of the chosen config files has a value (``data.sharp_dir``, ``data_root``)."""
    missing = sorted(_missing_keys(cfg, ""))
    if missing:
        raise ConfigError(
            f"{', '.join(missing)}: not set; give {'it' if len(missing) == 1 else 'each'} a value "
            f"on the command line, e.g. {missing[0]}=..."
        )


def _check_clip_precision(cfg: DictConfig) -> None:
    """Refuse gradient clipping under float16 AMP: manual optimisation clips before the step
    unscales, so the norm would be measured on loss-scaled gradients (clipped far too hard)."""
    for name in cfg.get("stages") or {}:
        precision = str(stage_settings(cfg, name, "trainer").get("precision"))
        clip = stage_settings(cfg, name, "optim").get("gradient_clip_val")
        if clip and precision in ("16-mixed", "16"):
            raise ConfigError(
                f"optim.gradient_clip_val={clip} with trainer.precision={precision} (stage "
                f"{name}): clipping would see loss-scaled gradients; use bf16-mixed or 32-true, "
                "or gradient_clip_val=null"
            )


def _check_wandb_mode(cfg: DictConfig) -> None:
    """``wandb_mode`` (default: ``$WANDB_MODE``, else offline) must be a mode wandb knows."""
    if not any(
        isinstance(spec, DictConfig) and str(spec.get("_target_", "")).endswith("WandbLogger")
        for spec in (cfg.get("logger") or {}).values()
    ):
        return
    mode = OmegaConf.select(cfg, "wandb_mode", default=None)
    if mode not in WANDB_MODES:
        raise ConfigError(
            f"wandb_mode={mode!r}: must be one of {', '.join(WANDB_MODES)} (it defaults to "
            "$WANDB_MODE, else offline); fix the override or the environment variable"
        )


def _check_stage_lengths(cfg: DictConfig) -> None:
    """Every stage has its own length, and no global one competes with it."""
    stages = [str(name) for name in cfg.get("stages") or {}]
    trainer = cfg.get("trainer") or {}
    for key in STAGE_LENGTH_KEYS:
        if key in trainer:
            where = " / ".join(f"stages.{name}.trainer.{key}=N" for name in stages)
            raise ConfigError(
                f"trainer.{key}={trainer[key]!r}: each stage sets its own length; set "
                f"{where or f'stages.<stage>.trainer.{key}=N'} instead"
            )
    for name in stages:
        own = cfg.stages[name].get("trainer") or {}
        if own.get("max_epochs") is None and own.get("max_steps") in (None, -1):
            raise ConfigError(
                f"stages.{name}.trainer: no length; set stages.{name}.trainer.max_epochs "
                "(or max_steps) in its stage file or on the command line"
            )
        _check(cfg, f"stages.{name}.trainer.max_epochs", low=1, integer=True, optional=True)
        _check(cfg, f"stages.{name}.trainer.max_steps", low=-1, integer=True, optional=True)


def validate_config(cfg: DictConfig) -> None:
    """Check the numbers of a composed training config before anything is built.

    Batch and crop sizes, learning rates and optimiser constants, ratios, kernel sizes, stage
    lengths, channels, the stages chosen, the W&B mode, gradient clipping against float16 AMP,
    the constructor arguments of every net and loss, and the crop against every net (stride,
    discriminator depth).

    Args:
        cfg: The composed config.

    Raises:
        ConfigError: One line naming the key, the value and the allowed range.
    """
    _check_missing(cfg)
    for blur in ("synthetic_blur", "val_blur"):
        _check_kernel_size(cfg, f"data.{blur}.kernel_size")
    _check_data(cfg)
    _check(cfg, "checkpoint_every_n_batches", low=0, integer=True, optional=True)
    if "stages" in cfg:
        stage_order(cfg)
    _check_wandb_mode(cfg)
    channels = OmegaConf.select(cfg, "model.image_channels", default=None)
    _check(cfg, "model.image_channels", low=1, high=3, integer=True)
    data_channels = OmegaConf.select(cfg, "data.channels", default=None)
    if data_channels not in (None, 1, 3):
        raise ConfigError(f"data.channels={data_channels!r}: must be 1 (gray) or 3 (RGB)")
    if data_channels is not None and channels is not None and data_channels != channels:
        raise ConfigError(
            f"data.channels={data_channels} but model.image_channels={channels}: the nets must "
            f"see what the data gives; set model.image_channels={data_channels} (data.channels "
            "follows it)"
        )
    optims = {"optim": cfg.get("optim")}
    for name, stage in (cfg.get("stages") or {}).items():
        if stage.get("optim"):
            optims[f"stages.{name}.optim"] = stage.optim
        for key in stage.get("module") or {}:
            if "ratio" in str(key):
                _check(cfg, f"stages.{name}.module.{key}", low=0, high=1)
    for prefix, optim in optims.items():
        if not isinstance(optim, DictConfig):
            continue
        for kind in ("generator", "discriminator"):
            _check(cfg, f"{prefix}.{kind}.lr", low=0, low_open=True)
            _check(cfg, f"{prefix}.{kind}.weight_decay", low=0)
            betas = OmegaConf.select(cfg, f"{prefix}.{kind}.betas", default=None)
            if betas is not None:
                for i in range(len(betas)):
                    _check(cfg, f"{prefix}.{kind}.betas[{i}]", low=0, high=1, high_open=True)
        _check(cfg, f"{prefix}.ema_decay", low=0, high=1, high_open=True, optional=True)
        _check(cfg, f"{prefix}.gradient_clip_val", low=0, low_open=True, optional=True)
        _check(cfg, f"{prefix}.d_warmup_steps", low=0, integer=True, optional=True)
    _check_stage_lengths(cfg)
    _check_clip_precision(cfg)
    _check_crop(cfg)
    _check_objectives(cfg)
