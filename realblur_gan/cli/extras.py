"""Optional dependencies: a missing one is one line naming the extra that installs it.

``pip install 'realblur-gan[onnx]'`` adds what ONNX export needs; ``[dev]`` adds the test and
lint tools (and the onnx extra, which the tests exercise). Everything else is a core dependency.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from realblur_gan.errors import UserError

__all__ = ["MissingExtraError", "require_extra"]


class MissingExtraError(UserError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra."""


def require_extra(extra: str, modules: Sequence[str], feature: str) -> None:
    """Check, without importing them, that the packages a feature needs are installed.

    Args:
        extra: the extra of ``pyproject.toml`` that installs them, e.g. ``"onnx"``.
        modules: their import names.
        feature: what needs them, for the message (e.g. ``"--onnx"``).

    Raises:
        MissingExtraError: One or more is missing; one line saying how to install them.

    Example:
        >>> require_extra("dev", ["json"], "this example")
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)}, which {verb} not installed: "
            f"pip install 'realblur-gan[{extra}]'"
        )
