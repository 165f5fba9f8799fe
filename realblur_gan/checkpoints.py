"""Reading nets' weights out of checkpoints safely (no arbitrary unpickling)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or lacks the requested net."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat state dict of a Lightning checkpoint or a plain ``torch.save``'d state dict.

    Loaded with ``weights_only=True``: tensors and plain containers only, so a downloaded file
    cannot run code on load.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: checkpoint not found; pass the path of an existing .ckpt "
            "(e.g. outputs/<scheme>/<date>/checkpoints/<stage>/last.ckpt)"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: cannot read as a safe torch checkpoint ({first}); re-export it or "
            "point to a last.ckpt written by realblur-gan"
        ) from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state dict inside; is this a realblur-gan checkpoint?")
    return state


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
