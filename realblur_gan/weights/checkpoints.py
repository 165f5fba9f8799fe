"""Writing checkpoints safely, and reading them and exported weights back into nets.

Every checkpoint goes through :func:`atomic_save` (training uses it via
:class:`AtomicCheckpointIO`): a temporary file in the *same* folder, fsync, then ``os.replace``
over the old file, so a crash, ``kill -9`` or a full disk never leaves a partial ``last.ckpt``.
Every checkpoint is read through :func:`load_checkpoint`: ``weights_only=True`` (a downloaded
file cannot run code) and non-finite weights refused, with one-line errors naming the file.
Resume picks its file with :func:`find_resume_checkpoint`, which passes over damaged ones.

:func:`load_generator` rebuilds a trained generator from a checkpoint or an exported
``.safetensors`` alone, from the config stored with it (checked by
:mod:`realblur_gan.weights.net_configs`, so a file cannot name arbitrary callables).
:func:`packaged_model` is the DBGAN shipped in ``realblur_gan/weights/`` (the first entry of
:mod:`realblur_gan.weights.model_zoo`), what ``realblur-deblur`` runs when no checkpoint is given.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from realblur_gan.defaults import DEFAULT_NET
from realblur_gan.errors import CheckpointError, UserError
from realblur_gan.nets.init import net_channels
from realblur_gan.ownership import unique_temp
from realblur_gan.weights.net_configs import (
    EMA_SUFFIX,
    NetConfigError,
    build_net,
    config_channels,
    read_net_config,
)

log = logging.getLogger(__name__)

# Partial files of :func:`atomic_save`: hidden and not ``*.ckpt``, so nothing mistakes one for a
# checkpoint; a crash can leave one behind, and :func:`find_resume_checkpoint` removes them.
_PARTIAL_GLOB = ".*.partial"
_LISTED = 5


class CheckpointWriteError(UserError, OSError):
    """A checkpoint could not be written; the previous file at that path is unchanged."""


def _write_all(handle: Any, data: memoryview) -> None:
    """Write ``data`` to ``handle``; its own function so tests can make the disk fill up."""
    handle.write(data)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the folder entry (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is always either the old or the new file.

    The bytes go to a temporary file in the same folder (a rename within one filesystem is
    atomic; across filesystems it would become a copy over the old file), are fsynced, and the
    file is renamed over ``path``.

    Raises:
        CheckpointWriteError: On any OS error (disk full, read-only, permissions); the partial
            file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = unique_temp(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as handle:
            _write_all(handle, memoryview(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        code = errno.errorcode.get(err.errno or 0, "")
        reason = f"{err.strerror or err} [{code}]" if code else str(err)
        kept = f"the previous {path.name} is kept" if path.exists() else "nothing was written"
        raise CheckpointWriteError(
            f"{path}: cannot write checkpoint ({reason}); {kept}. Free disk space or fix the "
            "folder's permissions, then continue with resume=true"
        ) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write_bytes`.

    The object is serialised in memory first, so a serialisation error touches no file.
    """
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getbuffer())


def __getattr__(name: str) -> Any:
    # Lightning takes ~2 s and ~0.25 GB resident to import, and only training needs it: the
    # class built on its checkpoint I/O is made on first use, so that loading a generator for
    # inference (realblur-deblur, -evaluate) does not import it.
    if name == "AtomicCheckpointIO":
        globals()[name] = made = _atomic_checkpoint_io()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _atomic_checkpoint_io() -> type:
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Lightning's checkpoint I/O with every save made by :func:`atomic_save`.

        Lightning's own atomic save stages the file in ``$TMPDIR`` and moves it; when the run
        folder is on another filesystem that move is a copy over the old checkpoint, which a
        crash or a full disk leaves truncated.
        """

        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
        ) -> None:
            if storage_options is not None:
                raise TypeError("AtomicCheckpointIO takes no storage_options")
            atomic_save(checkpoint, Path(path))

    AtomicCheckpointIO.__qualname__ = "AtomicCheckpointIO"  # pickles as checkpoints' attribute
    return AtomicCheckpointIO


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:160]


def non_finite_tensors(state: Mapping[str, Any], prefix: str | None = None) -> list[str]:
    """Names of the floating-point tensors in ``state`` holding NaN or Inf.

    Args:
        state: A state dict.
        prefix: Only keys starting with ``prefix + "."`` (one net); None checks all.
    """
    bad = []
    for key, value in state.items():
        if prefix is not None and not str(key).startswith(f"{prefix}."):
            continue
        tensor = isinstance(value, torch.Tensor) and value.is_floating_point()
        if tensor and not bool(torch.isfinite(value).all()):
            bad.append(str(key))
    return bad


def check_finite(
    state: Mapping[str, Any], path: str | os.PathLike[str], prefix: str | None
) -> None:
    """Refuse weights holding NaN or Inf (a diverged run): they would restore black images.

    Raises:
        CheckpointError: Naming the file, how many tensors are bad and the first of them.
    """
    bad = non_finite_tensors(state, prefix)
    if bad:
        shown = ", ".join(bad[:_LISTED]) + (
            f" and {len(bad) - _LISTED} more" if len(bad) > 5 else ""
        )
        raise CheckpointError(
            f"{path}: {len(bad)} weight tensors hold NaN/Inf ({shown}); training diverged "
            "before this was saved: use an earlier checkpoint or retrain with a lower learning rate"
        )


def load_checkpoint(path: str | os.PathLike[str], finite: bool = True) -> dict[str, Any]:
    """Read a checkpoint safely: the one reader used by resume, init_from, predict, evaluate and
    export.

    Loaded with ``weights_only=True``: tensors and plain containers only, so a downloaded file
    cannot run code on load.

    Args:
        path: A Lightning checkpoint or a plain ``torch.save``'d state dict.
        finite: Also refuse NaN/Inf in any weight (callers that load one net check only that
            net with :func:`check_finite`).

    Returns:
        The checkpoint dict (its weights under ``state_dict``, or the dict itself when flat).

    Raises:
        CheckpointError: Missing, empty, truncated, unsafe, not a dict, or non-finite.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"{path}: checkpoint not found; pass the path of an existing .ckpt "
            "(e.g. outputs/<scheme>/<date>/checkpoints/<stage>/last.ckpt)"
        )
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file; pass a .ckpt file")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path}: empty file (0 bytes), left by an interrupted write; use another checkpoint"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # not an object reference: junk or truncated
            raise CheckpointError(
                f"{path}: cannot read it: damaged or not a torch checkpoint; use another "
                "checkpoint, e.g. a last.ckpt written by realblur-gan"
            ) from None
        raise CheckpointError(
            f"{path}: refused: it holds Python objects besides tensors, which could run code "
            "when loaded; use a checkpoint written by realblur-gan"
        ) from None
    except Exception as err:  # torch raises several types for corrupt/truncated files
        raise CheckpointError(
            f"{path}: cannot read it: damaged or not a torch checkpoint ({_first_line(err)}); "
            "use another checkpoint, e.g. a last.ckpt written by realblur-gan"
        ) from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state dict inside; is this a realblur-gan checkpoint?")
    if finite:
        check_finite(state, path, None)
    return blob


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat state dict of a checkpoint (see :func:`load_checkpoint`), every weight finite."""
    blob = load_checkpoint(path)
    return blob.get("state_dict", blob)


def net_names(state: Mapping[str, Any]) -> list[str]:
    """The nets in a module's flat state dict: the first part of each key, sorted."""
    return sorted({str(key).split(".", 1)[0] for key in state})


def net_state_dict(
    state: Mapping[str, torch.Tensor], net: str, path: str | os.PathLike[str], fix: str = ""
) -> dict[str, torch.Tensor]:
    """The weights of one net from a module's flat state dict, its ``<net>.`` prefix removed.

    Args:
        state: A LightningModule's state dict (keys ``bgan_g.…``, ``dbgan_g.…``, …).
        net: The net's attribute name, shared by every realblur-gan module.
        path: The file it came from, for the message.
        fix: Appended to the message when the net is absent (e.g. ``"; pick --net"``).

    Raises:
        CheckpointError: No weights of ``net``; the message lists the nets there are.
    """
    prefix = f"{net}."
    sub = {k.removeprefix(prefix): v for k, v in state.items() if str(k).startswith(prefix)}
    if not sub:
        raise CheckpointError(f"{path}: has no '{net}' weights (it holds {net_names(state)}){fix}")
    return sub


def find_resume_checkpoint(stage_dir: str | os.PathLike[str]) -> Path | None:
    """The newest intact checkpoint of an interrupted stage, or None when it wrote none.

    ``last.ckpt`` is tried first (it is always the newest save), then the other ``*.ckpt`` from
    newest to oldest. A damaged, unsafe or non-finite file is passed over with a warning naming
    it; partial files left by a crash mid-write are deleted.

    Raises:
        CheckpointError: Checkpoints exist but none is usable (listing each and why).
    """
    stage_dir = Path(stage_dir)
    for partial in stage_dir.glob(_PARTIAL_GLOB):
        log.info("%s: removing the partial file of an interrupted checkpoint write", partial)
        partial.unlink(missing_ok=True)
    last = stage_dir / "last.ckpt"
    others = sorted(
        (p for p in stage_dir.glob("*.ckpt") if p != last),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    candidates = ([last] if last.exists() else []) + others
    problems: list[str] = []
    for path in candidates:
        try:
            blob = load_checkpoint(path)
            if "state_dict" not in blob or "loops" not in blob:
                raise CheckpointError(f"{path}: not a training checkpoint (no loop state)")
        except CheckpointError as err:
            log.warning("resume: skipping %s", err)
            problems.append(str(err))
            continue
        if problems:
            log.warning("resume: continuing from the newest intact checkpoint %s", path)
        return path
    if problems:
        raise CheckpointError(
            f"{stage_dir}: no intact checkpoint to resume this stage from; delete the folder "
            "to train the stage from scratch:\n  " + "\n  ".join(problems)
        )
    return None


def load_net_weights(module: nn.Module, net_name: str, path: str | Path) -> None:
    """Copy the weights of ``net_name`` (e.g. ``bgan_g``) from a file into ``module``.

    ``path`` is a training checkpoint (the net's weights under its ``<net>.`` prefix; for
    ``dbgan_g`` its moving average ``dbgan_g_ema`` when the checkpoint kept one, the better
    model) or an exported ``.safetensors`` holding that one net. A module that keeps a moving
    average of the net (``dbgan_g_ema``) gets the same weights there, so fine-tuning starts its
    average from the loaded model rather than from the random initialisation.

    Args:
        module: Holds the net as attribute ``net_name``.
        net_name: State-dict prefix, shared by every realblur-gan module.
        path: Checkpoint or exported weights.
    """
    if Path(path).suffix == ".safetensors":
        sub = read_safetensors(path)[0]
    else:
        state = read_state_dict(path)
        ema = f"{net_name}_ema"
        source = ema if any(str(k).startswith(f"{ema}.") for k in state) else net_name
        sub = net_state_dict(state, source, path)
    targets = [net_name] + ([f"{net_name}_ema"] if getattr(module, f"{net_name}_ema", None) else [])
    for target in targets:
        try:
            getattr(module, target).load_state_dict(sub)
        except RuntimeError as err:
            raise CheckpointError(
                f"{path}: '{net_name}' weights do not fit the configured net "
                f"({str(err).splitlines()[0]}); use the model config the weights were trained with"
            ) from None
    log.info("loaded %s from %s", " and ".join(targets), path)


# --------------------------------------------------------------------------------------------------
# Rebuilding a generator from a file
# --------------------------------------------------------------------------------------------------


def read_safetensors(
    path: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the string metadata of a ``.safetensors`` file (no pickle involved).

    Raises:
        CheckpointError: Missing or unreadable.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights not found; run python -m realblur_gan.export first")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            metadata = handle.metadata() or {}
    except Exception as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({_first_line(err)}); re-export it"
        ) from None
    return state, metadata


def _json_or_none(text: str | None) -> Any:
    """``text`` parsed as JSON; None when absent or not JSON (optional metadata only)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _exported_config(path: Path, metadata: Mapping[str, str], net: str) -> tuple[Any, Path]:
    """The config of an exported net, from ``<net>.json`` beside it or its metadata, or None."""
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        return read_net_config(sidecar, net), sidecar
    if "net_config" not in metadata:
        return None, path
    try:
        return json.loads(metadata["net_config"]), path
    except json.JSONDecodeError:
        raise CheckpointError(
            f"{path}: its net_config metadata is not JSON; re-export it"
        ) from None


def load_generator(
    path: str | os.PathLike[str],
    net: str = DEFAULT_NET,
    net_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    ema: bool = True,
) -> nn.Module:
    """Rebuild a trained generator from a Lightning checkpoint or an exported ``.safetensors``.

    Args:
        path: a ``.ckpt`` written by training, an exported ``<net>.safetensors`` (its config is
            read from ``<net>.json`` beside it or from the file's metadata), or the export folder.
        net: which net to load (``dbgan_g`` deblurs; ``bgan_g`` blurs).
        net_config: the net's config (dict or ``.yaml``/``.json`` path) for files that carry none,
            e.g. checkpoints written before training stored ``net_configs``.
        ema: when a checkpoint also holds the net's moving average (``dbgan_g_ema``, what
            validation scores), load that; False loads the raw weights.

    Returns:
        The net on the CPU, in eval mode, with gradients off, and two attributes:
        ``image_channels`` (the channels it maps) and ``net_config`` (the config it was built
        from).

    Raises:
        CheckpointError: unreadable file, missing weights, or weights that do not fit.
        NetConfigError: no config, or one that names anything outside ``realblur_gan.nets``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"{net}.safetensors"
    config: Any = net_config
    source: str | os.PathLike[str] = path
    if isinstance(net_config, str | os.PathLike):
        source, config = net_config, read_net_config(net_config, net)
    init_source: Any = None
    if path.suffix == ".safetensors":
        state, metadata = read_safetensors(path)
        if config is None:
            config, source = _exported_config(path, metadata, net)
        init_source = _json_or_none(metadata.get("init_source"))
    else:
        # Finiteness is checked below, on the one net loaded.
        blob = load_checkpoint(path, finite=False)
        full = blob.get("state_dict", blob)
        if ema and not net.endswith(EMA_SUFFIX) and f"{net}{EMA_SUFFIX}" in net_names(full):
            net = f"{net}{EMA_SUFFIX}"
            log.info("%s: using the EMA weights %s", path, net)
        state = net_state_dict(full, net, path, fix="; pick --net")
        if config is None:
            configs = blob.get("net_configs") or {}
            config = configs.get(net) or configs.get(net.removesuffix(EMA_SUFFIX))
        init_source = (blob.get("init_sources") or {}).get(net.removesuffix(EMA_SUFFIX))
    # NaN/Inf weights would restore every image as black without any error.
    check_finite(state, path, None)
    if config is None:
        raise NetConfigError(
            f"{path}: holds no config for '{net}'; pass --net-config with the model config it "
            "was trained with (e.g. conf/model/default.yaml)"
        )
    config = dict(config)
    model = build_net(config, source, net)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: '{net}' weights do not fit its config ({_first_line(err)}); pass the model "
            "config the checkpoint was trained with"
        ) from None
    model.image_channels = config_channels(config) or net_channels(model)
    model.net_config = config  # what it was built from, for re-export
    # {"source", "fingerprint"} of the weights it was fine-tuned from, when training recorded it.
    model.init_source = init_source if isinstance(init_source, dict) else None
    model.eval().requires_grad_(False)
    log.info("loaded %s (%s) from %s", net, config["_target_"], path)
    return model
