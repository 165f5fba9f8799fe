"""Weight-space interpolation between a fine-tuned generator and the weights it started from.

A long fine-tuning run gains on the data it was tuned for and can lose on images unlike them
(mild blur over-sharpened, one photo's texture turned into ringing). Moving part of the way
back towards the starting weights, ``start + alpha * (tuned - start)``, keeps most of the gain
and removes most of those losses: measured on the own-data recipe in
``docs/recipe-real-photos.md`` (the idea is Wortsman et al.'s WiSE-FT, CVPR 2022). Both nets
must share one architecture: fine-tuning changes values, never shapes.

Used by ``python -m realblur_gan.export --start MODEL --alpha A`` (:mod:`realblur_gan.export`),
which can also pick ``alpha`` on a validation folder.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping

import torch
from torch import nn

from realblur_gan.errors import UserError

__all__ = ["MismatchedNets", "interpolate_nets", "interpolate_state_dicts", "weights_fingerprint"]


class MismatchedNets(UserError, ValueError):
    """The two nets do not have the same parameters, so no point lies between them."""


def interpolate_state_dicts(
    start: Mapping[str, torch.Tensor], end: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``start + alpha * (end - start)`` for every floating-point tensor.

    Integer buffers (counters, indices) are not averaged: they are taken from ``end``.

    Args:
        start: The weights fine-tuning began from.
        end: The fine-tuned weights, the same keys and shapes.
        alpha: Share of the way from ``start`` to ``end``: 0 gives ``start``, 1 gives ``end``;
            values outside [0, 1] extrapolate and are refused.

    Returns:
        A new state dict (tensors not shared with either input).

    Raises:
        MismatchedNets: The keys or a shape differ.
        ValueError: ``alpha`` outside [0, 1] or not finite.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: use a value in [0, 1] (0: start, 1: fine-tuned)")
    missing, extra = sorted(end.keys() - start.keys()), sorted(start.keys() - end.keys())
    if missing or extra:
        first = (missing or extra)[0]
        raise MismatchedNets(
            f"the two nets differ: '{first}' is in only one of them "
            f"({len(missing) + len(extra)} such keys)"
        )
    out: dict[str, torch.Tensor] = {}
    for key, tuned in end.items():
        origin = start[key]
        if origin.shape != tuned.shape:
            raise MismatchedNets(
                f"the two nets differ: '{key}' is {tuple(origin.shape)} in one and "
                f"{tuple(tuned.shape)} in the other"
            )
        if tuned.is_floating_point():
            # In float32 at least: a bf16 lerp of nearly equal weights would round to either end.
            mixed = torch.lerp(origin.float(), tuned.float().to(origin.device), alpha)
            out[key] = mixed.to(tuned.dtype)
        else:
            out[key] = tuned.clone()
    return out


def interpolate_nets(start: nn.Module, end: nn.Module, alpha: float) -> nn.Module:
    """A copy of ``end`` whose weights are ``start + alpha * (end - start)``.

    Args:
        start: The net fine-tuning began from (e.g. the packaged DBGAN).
        end: The fine-tuned net, built from the same config; its attributes
            (``net_config``, ``image_channels``) are kept by the copy.
        alpha: See :func:`interpolate_state_dicts`.

    Returns:
        A new net; neither input is changed.

    Raises:
        MismatchedNets: The nets have different parameters (another architecture or width).
    """
    mixed = copy.deepcopy(end)
    mixed.load_state_dict(interpolate_state_dicts(start.state_dict(), end.state_dict(), alpha))
    return mixed


def weights_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """A SHA-256 of a net's weights (names, shapes and float32 values), in hex.

    The same weights give the same fingerprint whether they were read from a training
    checkpoint, an exported ``.safetensors`` or a packaged model: training records the
    fingerprint of the weights it fine-tunes from (``init_from``), and interpolation checks its
    ``start`` against it.

    Args:
        state: A state dict.
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key].detach()
        if value.is_floating_point():
            # As float32: weights read from a bf16 file into a float32 net match the file.
            value = value.float()
        digest.update(f"{key}:{tuple(value.shape)};".encode())
        digest.update(value.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
