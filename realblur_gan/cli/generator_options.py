"""The command-line options that pick a trained generator, shared by predict, evaluate and export.

:func:`add_generator_options` adds ``--checkpoint``, ``--net``, ``--no-ema`` and
``--net-config`` to a parser; :func:`generator_from_options` loads the net they name, or the
packaged DBGAN (:func:`realblur_gan.weights.model_zoo.packaged_model`) when no checkpoint is given.
Torch is imported only when a net is loaded, so a tool's ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from realblur_gan.defaults import DEFAULT_NET
from realblur_gan.errors import UserError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["add_generator_options", "generator_from_options"]


def add_generator_options(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """Add ``--checkpoint``, ``--net``, ``--no-ema`` and ``--net-config`` to ``parser``.

    Args:
        parser: the command's parser.
        checkpoint_help: what ``--checkpoint`` does in that command (and its default).
    """
    from realblur_gan.weights.model_zoo import MODELS

    group = parser.add_argument_group("model")
    group.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"{checkpoint_help}; or a packaged model's name ({', '.join(MODELS)})",
    )
    group.add_argument(
        "--net",
        default=DEFAULT_NET,
        metavar="NAME",
        help="net inside the checkpoint: dbgan_g deblurs, bgan_g blurs",
    )
    group.add_argument(
        "--no-ema", action="store_true", help="use the raw weights even if an EMA copy exists"
    )
    group.add_argument(
        "--net-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="net/model config (.yaml/.json) if the checkpoint holds none",
    )


def generator_from_options(
    args: argparse.Namespace, checkpoint: str | Path | None = None
) -> nn.Module:
    """Load the generator that the options of :func:`add_generator_options` name.

    Args:
        args: the parsed command line.
        checkpoint: a checkpoint named another way (a positional argument); ``args.checkpoint``
            when None, and the packaged DBGAN when that is None too.

    Returns:
        The net on the CPU in eval mode (see
        :func:`realblur_gan.weights.checkpoints.load_generator`).

    Raises:
        UserError: the file or its config cannot be loaded, no packaged model is installed, or
            a net other than the DBGAN is asked of the packaged model.
    """
    from realblur_gan.weights.checkpoints import load_generator
    from realblur_gan.weights.model_zoo import MODELS, packaged_model, verified_path

    checkpoint = checkpoint if checkpoint is not None else args.checkpoint
    # A packaged model's name, unless a file of that name is there (the file wins).
    name = str(checkpoint) if checkpoint is not None else None
    if checkpoint is None or (name in MODELS and not Path(name).exists()):
        if args.net != DEFAULT_NET:
            raise UserError(
                f"--net {args.net}: the packaged model is the DBGAN ({DEFAULT_NET}); pass "
                "--checkpoint with a file that holds that net"
            )
        checkpoint = packaged_model() if checkpoint is None else verified_path(name)
    return load_generator(checkpoint, args.net, args.net_config, ema=not args.no_ema)
