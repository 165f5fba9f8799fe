"""Locating pretrained backbone weights without ever downloading them at run time.

Weights come from an explicit path (config) or from the torch hub cache
(``torch.hub.get_dir()/checkpoints/<file>``, where torchvision itself would have put them).
When neither exists, :class:`MissingPretrainedWeights` says exactly which file to put where.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from realblur_gan.errors import UserError

log = logging.getLogger(__name__)


class MissingPretrainedWeights(UserError, RuntimeError):
    """A pretrained backbone's weight file is neither at the configured path nor in the hub
    cache. The message names the file, where to place it and which config key to set."""


def hub_checkpoint_path(filename: str) -> Path:
    """Where torchvision caches a checkpoint: ``torch.hub.get_dir()/checkpoints/<filename>``.

    Args:
        filename: the checkpoint's file name, e.g. ``"vgg19-dcbb9e9d.pth"``.

    Returns:
        The path (which may not exist).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def resolve_weights(
    filename: str, weights_path: str | Path | None, url: str, config_hint: str = "weights_path"
) -> Path:
    """Find a weight file: the explicit path if given, else the hub cache. Never downloads.

    Args:
        filename: the checkpoint's file name in the hub cache.
        weights_path: explicit path from config, or ``None`` to use the hub cache.
        url: where the file can be downloaded from by hand (only used in the message).
        config_hint: the config key that sets ``weights_path`` (only used in the message).

    Returns:
        Path of an existing file.

    Raises:
        MissingPretrainedWeights: when the file does not exist.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if path.is_file():
            return path
        raise MissingPretrainedWeights(
            f"{config_hint}={path} does not exist: download {url} there, or unset it to use "
            f"{hub_checkpoint_path(filename)}"
        )
    path = hub_checkpoint_path(filename)
    if path.is_file():
        return path
    raise MissingPretrainedWeights(
        f"pretrained weights not found: download {url} to {path}, or set {config_hint} to the "
        "file's path (nothing is downloaded at run time)"
    )


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict of tensors on the CPU, memory-mapped when the format allows it.

    Args:
        path: a ``.pth`` file holding a state dict.

    Returns:
        The state dict.
    """
    try:
        # mmap avoids reading the parts of a large checkpoint we do not use (VGG's classifier).
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        state = torch.load(path, map_location="cpu", weights_only=True)
    log.info("loaded pretrained weights from %s", path)
    return state
