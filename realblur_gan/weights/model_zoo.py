"""The named pretrained models, and the check that a weight file is the one its name promises.

:data:`MODELS` maps a name to a :class:`PretrainedModel`: a weight file shipped in
``realblur_gan/weights/``, its SHA-256 and the net it holds. The first entry is the default:
what ``realblur-deblur`` runs without ``--checkpoint``, ``Deblurrer.from_pretrained()`` and
``torch.hub.load(<clone>, "realblur_dbgan", source="local")`` load.

Replacing the packaged model means copying the new export over the file and changing its entry
here: the file name if it changed, and the hash (``sha256sum realblur_gan/weights/<file>``). The
net's config travels inside the file (``python -m realblur_gan.export`` writes it into the
metadata), so a model with another architecture needs nothing else.

Imports nothing heavy: the command-line tools read it before their arguments are parsed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realblur_gan.defaults import DEFAULT_NET
from realblur_gan.errors import CheckpointError, UserError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_NET",
    "MODELS",
    "WEIGHTS_DIR",
    "PretrainedModel",
    "file_sha256",
    "get_model",
    "load_model",
    "load_pretrained",
    "verified_path",
]

#: Where the packaged weight files live (package data of the wheel).
WEIGHTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PretrainedModel:
    """One named model.

    Attributes:
        file: the weight file's name in :data:`WEIGHTS_DIR` (an exported ``.safetensors``).
        sha256: its SHA-256 in hex, checked every time the file is loaded.
        net: the net the file holds (``dbgan_g`` deblurs).
        net_config: the net's ``_target_`` config; None reads it from the file's metadata,
            where ``python -m realblur_gan.export`` writes it.
        description: one line for listings.
    """

    file: str
    sha256: str
    net: str = DEFAULT_NET
    net_config: Mapping[str, Any] | None = field(default=None, hash=False)
    description: str = ""

    @property
    def path(self) -> Path:
        """The weight file (which may be absent from a build that ships no weights)."""
        return WEIGHTS_DIR / self.file


MODELS: dict[str, PretrainedModel] = {
    "realblur-dbgan": PretrainedModel(
        file="realblur-dbgan.safetensors",
        sha256="83d0f93a0cfe1e82a59d40ac0dfe64e4181f0cc2fd85b0b8495f7ee8a42bb365",
        description=(
            "DBGAN for camera-shake blur: the mean of a NAFNet's and the scale-recurrent "
            "net's outputs (version 5; see realblur_gan/weights/MODEL_CARD.md)"
        ),
    ),
    # Version 4 alone, the pair's second member: the own-data recipe fine-tunes it.
    "realblur-dbgan-srn": PretrainedModel(
        file="realblur-dbgan-srn.safetensors",
        sha256="a804c027de39e4b538c2e9221c5d75aec0c1f7e313b2ccc71bb75f2460b37cb7",
        description=(
            "Scale-recurrent DBGAN alone (one U-Net shared by 3 scales; version 4), where "
            "fine-tuning on your own photos starts"
        ),
    ),
    # Version 5's first member alone: to average a net of your own with (export --average-with).
    "realblur-dbgan-nafnet": PretrainedModel(
        file="realblur-dbgan-nafnet.safetensors",
        sha256="0f5a0dc69e9d7af44652018f34555d9bb8cb5b7de1e68c4c31d7cef9d2fdd334",
        description=(
            "NAFNet DBGAN alone (0.44 M parameters, trained without sensor noise), the first "
            "member of realblur-dbgan"
        ),
    ),
}
#: The name of the first entry: the packaged DBGAN.
DEFAULT_MODEL = next(iter(MODELS))


def get_model(name: str) -> PretrainedModel:
    """The registry entry called ``name``.

    Raises:
        UserError: No model has that name; the message lists the names there are.
    """
    if name not in MODELS:
        raise UserError(f"no pretrained model named {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_path(name: str = DEFAULT_MODEL) -> Path:
    """The weight file of model ``name``, after checking that it is there and intact.

    Raises:
        UserError: ``name`` is not registered.
        CheckpointError: The file is absent (a build without weights) or its SHA-256 differs
            from the registry's (damaged, truncated, or replaced without updating the entry).
    """
    entry = get_model(name)
    path = entry.path
    if not path.is_file():
        raise CheckpointError(
            f"no packaged model is installed ({path} is absent); pass --checkpoint with a .ckpt "
            "from training or an exported .safetensors"
        )
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise CheckpointError(
            f"{path}: SHA-256 {actual[:12]}... is not the {entry.sha256[:12]}... registered for "
            f"'{name}': the file is damaged or was replaced; reinstall realblur-gan, or update "
            "the entry in realblur_gan/weights/model_zoo.py"
        )
    return path


def load_pretrained(name: str = DEFAULT_MODEL) -> nn.Module:
    """Build model ``name``'s net from its verified file.

    Returns:
        The net on the CPU in eval mode (see
        :func:`realblur_gan.weights.checkpoints.load_generator`).
    """
    from realblur_gan.weights.checkpoints import load_generator

    entry = get_model(name)
    return load_generator(verified_path(name), entry.net, entry.net_config)


def load_model(
    model: str | os.PathLike[str], net: str = DEFAULT_NET, ema: bool = True
) -> nn.Module:
    """Build the net a name or a file names: a model of :data:`MODELS` (its SHA-256 checked),
    else a ``.ckpt`` from training or an exported ``.safetensors`` / export folder.

    Args:
        model: The name or the path.
        net: The net to read from a file (``dbgan_g`` deblurs).
        ema: Use a checkpoint's moving-average weights when it has them.

    Returns:
        The net on the CPU in eval mode (see
        :func:`realblur_gan.weights.checkpoints.load_generator`).

    Raises:
        UserError: ``model`` is neither a registered name nor an existing file or folder.
        CheckpointError: The file is damaged, does not match its registered SHA-256, or lacks
            the net.
    """
    from realblur_gan.weights.checkpoints import load_generator

    if isinstance(model, str) and model in MODELS:
        return load_pretrained(model)
    if not Path(model).exists():
        raise UserError(
            f"{model}: no such file, and no pretrained model of that name; pass a .ckpt or "
            f".safetensors path, or one of {', '.join(MODELS)}"
        )
    return load_generator(Path(model), net, ema=ema)


def packaged_model() -> Path:
    """The weights of the DBGAN packaged with realblur-gan, checked against their SHA-256.

    Raises:
        CheckpointError: None is installed (this build ships no weights), or the file is not
            the one :data:`MODELS` registers.
    """
    return verified_path(DEFAULT_MODEL)
