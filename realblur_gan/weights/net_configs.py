"""The Hydra configs stored with trained nets, and the allow-list that guards rebuilding them.

Training stores each net's resolved config in ``checkpoint["net_configs"]`` and export writes it
into the ``.safetensors`` metadata, so :func:`realblur_gan.weights.checkpoints.load_generator` can
rebuild a net from the file alone. A downloaded file must not name arbitrary callables:
:func:`build_net` instantiates a config only after :func:`check_net_config` has found nothing
but ``nn.Module`` classes from ``realblur_gan.nets`` in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from realblur_gan.errors import CheckpointError

__all__ = [
    "ALLOWED_TARGET_PREFIX",
    "EMA_SUFFIX",
    "NetConfigError",
    "build_net",
    "check_net_config",
    "config_channels",
    "read_net_config",
]

ALLOWED_TARGET_PREFIX = "realblur_gan.nets."
# The moving average of net ``x`` is stored as ``x_ema`` and built from ``x``'s config.
EMA_SUFFIX = "_ema"


class NetConfigError(CheckpointError):
    """A net config is missing, unreadable, or names something other than a realblur_gan net."""


def _targets(node: Any) -> Iterator[Any]:
    """Every ``_target_`` value in a nested config, depth first."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                yield value
            else:
                yield from _targets(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _targets(value)


def _strings(node: Any) -> Iterator[str]:
    """Every string value in a nested config."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _strings(value)


def check_net_config(config: Mapping[str, Any], source: str | os.PathLike[str]) -> None:
    """Refuse a net config that could build anything other than a realblur_gan net.

    Every ``_target_`` (nested ones included) must name an ``nn.Module`` subclass defined in
    ``realblur_gan.nets``: checking the prefix alone is not enough, since
    ``realblur_gan.nets.init.torch.load`` starts with it. Interpolations (``${...}``) are refused
    too: a resolved config has none, and resolvers could read the environment.

    Args:
        config: the net's config, a plain dict with ``_target_``.
        source: the file it came from, for the message.

    Raises:
        NetConfigError: when anything is outside the allowed set.
    """
    if not isinstance(config, Mapping) or "_target_" not in config:
        raise NetConfigError(
            f"{source}: net config has no '_target_'; pass a realblur_gan net config"
        )
    from hydra.utils import get_object

    for target in _targets(config):
        refusal = (
            f"{source}: refusing _target_ {target!r}: only nn.Module classes under "
            f"{ALLOWED_TARGET_PREFIX} may be built from a file; fix or replace the net config"
        )
        if not isinstance(target, str) or not target.startswith(ALLOWED_TARGET_PREFIX):
            raise NetConfigError(refusal)
        if any(not part.isidentifier() or part.startswith("_") for part in target.split(".")):
            raise NetConfigError(refusal)
        try:
            obj = get_object(target)
        except Exception:
            raise NetConfigError(refusal) from None
        module = getattr(obj, "__module__", "") or ""
        if not (
            isinstance(obj, type)
            and issubclass(obj, nn.Module)
            and module.startswith(ALLOWED_TARGET_PREFIX)
        ):
            raise NetConfigError(refusal)
    for text in _strings(config):
        if "${" in text:
            raise NetConfigError(
                f"{source}: net config holds an interpolation {text!r}; pass a resolved config"
            )


def read_net_config(path: str | os.PathLike[str], net: str = "dbgan_g") -> dict[str, Any]:
    """Read a net config from ``.json`` or ``.yaml``.

    The file may be the net's own config (a mapping with ``_target_``, as :mod:`realblur_gan.export`
    writes) or a whole model config such as ``conf/model/default.yaml`` holding ``net`` as a key;
    its ``${model.*}`` interpolations are resolved within that file.

    Args:
        path: config file.
        net: key of the net in a model config.

    Returns:
        A plain, resolved config dict.

    Raises:
        NetConfigError: missing, unparsable, or without a config for ``net``.
    """
    path = Path(path)
    if not path.is_file():
        raise NetConfigError(f"{path}: net config not found; check --net-config")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
        else:
            from omegaconf import OmegaConf

            # Model configs interpolate ``${model.x}``: resolve them as if mounted at ``model``.
            root = OmegaConf.create({"model": OmegaConf.load(path)})
            data = OmegaConf.to_container(root, resolve=True)["model"]
    except Exception as err:
        text = " ".join(str(err).split())[:160]
        raise NetConfigError(
            f"{path}: cannot parse the net config ({text}); fix the file"
        ) from None
    if isinstance(data, Mapping) and "_target_" not in data:
        # An EMA copy is built like its net: dbgan_g_ema from the dbgan_g entry.
        for key in (net, net.removesuffix(EMA_SUFFIX)):
            if isinstance(data.get(key), Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or "_target_" not in data:
        raise NetConfigError(
            f"{path}: holds no '_target_' config for '{net}'; pass the model config the "
            "checkpoint was trained with (e.g. conf/model/default.yaml)"
        )
    return dict(data)


def config_channels(config: Mapping[str, Any]) -> int | None:
    """The image channels a config's net maps: its ``out_channels`` or ``image_channels`` (a
    noise wrapper that builds its net), or else its wrapped net's (an ensemble's first member's)."""
    for key in ("out_channels", "image_channels"):
        if isinstance(config.get(key), int):
            return config[key]
    inner = config.get("net")
    members = config.get("nets")
    if not isinstance(inner, Mapping) and isinstance(members, list | tuple) and members:
        inner = members[0]
    return config_channels(inner) if isinstance(inner, Mapping) else None


def build_net(config: Mapping[str, Any], source: str | os.PathLike[str], net: str) -> nn.Module:
    """Instantiate a net config once :func:`check_net_config` has allowed it.

    Args:
        config: the net's config, a plain dict with ``_target_``.
        source: the file it came from, for the messages.
        net: the net's name (e.g. ``dbgan_g``), for the messages.

    Returns:
        The freshly initialised net.

    Raises:
        NetConfigError: the config is refused, or building it fails.
    """
    check_net_config(config, source)
    from hydra.utils import instantiate

    try:
        return instantiate(dict(config))
    except Exception as err:
        text = " ".join(str(err).split())[:200]
        raise NetConfigError(f"{source}: cannot build '{net}' from its config ({text})") from None
