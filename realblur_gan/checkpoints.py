"""Writing and reading checkpoints safely.

Every checkpoint goes through :func:`atomic_save` (training uses it via
:class:`AtomicCheckpointIO`): a temporary file in the *same* folder, fsync, then ``os.replace``
over the old file, so a crash, ``kill -9`` or a full disk never leaves a partial ``last.ckpt``.
Every checkpoint is read through :func:`load_checkpoint`: ``weights_only=True`` (a downloaded
file cannot run code) and non-finite weights refused, with one-line errors naming the file.
Resume picks its file with :func:`find_resume_checkpoint`, which passes over damaged ones.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import nn

from realblur_gan.errors import UserError

log = logging.getLogger(__name__)

# Partial files of :func:`atomic_save`: hidden and not ``*.ckpt``, so nothing mistakes one for a
# checkpoint; a crash can leave one behind, and :func:`find_resume_checkpoint` removes them.
_PARTIAL_GLOB = ".*.partial"
_LISTED = 5


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, unsafe, non-finite or lacks the requested net."""


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
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
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


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with every save made by :func:`atomic_save`.

    Lightning's own atomic save stages the file in ``$TMPDIR`` and moves it; when the run folder
    is on another filesystem that move is a copy over the old checkpoint, which a crash or a
    full disk leaves truncated.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_save(checkpoint, Path(path))


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
    """Copy the weights of ``net_name`` (e.g. ``bgan_g``) from a checkpoint into ``module``.

    Args:
        module: Holds the net as attribute ``net_name``.
        net_name: State-dict prefix, shared by every realblur-gan module.
        path: Checkpoint path.
    """
    state = read_state_dict(path)
    prefix = f"{net_name}."
    sub = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        found = sorted({k.split(".", 1)[0] for k in state})
        raise CheckpointError(f"{path}: has no '{net_name}' weights (it holds {found})")
    net = getattr(module, net_name)
    try:
        net.load_state_dict(sub)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: '{net_name}' weights do not fit the configured net "
            f"({str(err).splitlines()[0]}); use the model config the checkpoint was trained with"
        ) from None
    log.info("loaded %s from %s", net_name, path)
