"""User-facing errors: problems with the user's input, config, files or machine.

A :class:`UserError` carries a message that names the file or config key and the fix; the CLIs
print it as ``error: <message>`` without a traceback (lists of bad files may follow on indented
lines). Anything else is a bug and keeps its traceback. ``--debug`` on the tool CLIs, or
``HYDRA_FULL_ERROR=1`` / ``REALBLUR_GAN_DEBUG=1`` in the environment, shows the traceback of user
errors too.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ArgumentError",
    "CheckpointError",
    "DataError",
    "UserError",
    "check_range",
    "cli_logging",
    "debug_requested",
    "error_text",
    "writable_dir",
]

_DEBUG_VARIABLES = ("HYDRA_FULL_ERROR", "REALBLUR_GAN_DEBUG")


class UserError(Exception):
    """A problem the user can fix; the message names the file or key and how to fix it.

    Raised in a DataLoader worker, it reaches the main process rebuilt from a message that
    holds the worker's whole traceback; the message is cut back to the original one line.
    """

    def __init__(self, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_from_worker(args[0], type(self)),)
        super().__init__(*args)


def _from_worker(message: str, kind: type) -> str:
    """The original message inside torch's ``Caught X in DataLoader worker process N.`` text."""
    if not message.startswith("Caught ") or "\nOriginal Traceback" not in message:
        return message
    for marker in (f"{kind.__module__}.{kind.__qualname__}: ", f"{kind.__name__}: "):
        at = message.rfind("\n" + marker)
        if at >= 0:
            return message[at + 1 + len(marker) :].rstrip()
    return message


class DataError(UserError, ValueError):
    """The data a config points at cannot be used: missing, too few, inconsistent."""


class ArgumentError(ValueError):
    """A constructor argument of a net, loss or module has a value it cannot take.

    The constructor knows the argument but not the config key that set it. Built from a config,
    training names the key and turns this into a :class:`~realblur_gan.training.config.ConfigError`
    (:func:`realblur_gan.training.config.config_mistake`): one line such as
    ``model.dbgan_g.depth=0: must be >= 1``. Raised with no config behind it, it is the calling
    code's bug, so it is deliberately not a :class:`UserError` and keeps its traceback.

    Args:
        argument: The argument's name, which is also the last part of its config key.
        value: The value given.
        allowed: What the argument takes, e.g. ``"must be >= 1"``.
    """

    def __init__(self, argument: str, value: Any, allowed: str) -> None:
        # All three in ``args``: the exception pickles (DataLoader workers, DDP) and compares.
        super().__init__(argument, value, allowed)
        self.argument = argument
        self.value = value
        self.allowed = allowed

    def __str__(self) -> str:
        return f"{self.argument}={self.value!r}: {self.allowed}"


def check_range(
    argument: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Refuse ``value`` unless it is a finite number in the range (or None when ``optional``).

    The one wording of a numeric bound: a constructor calls it on its own arguments, and the
    config checks call it on the values they read (both name the key the user types).

    Args:
        argument: The argument's name (or config key), for the message.
        value: The value given.
        low, high: Bounds; None leaves that side open-ended.
        low_open, high_open: Whether the bound itself is excluded.
        integer: Whether the value must be a whole number.
        optional: Whether None is allowed.

    Raises:
        ArgumentError: e.g. ``batch_size=0: must be an integer >= 1``.
    """
    if value is None and optional:
        return
    number = None if isinstance(value, bool) or not isinstance(value, int | float) else value
    ok = number is not None and math.isfinite(number) and not (integer and number != int(number))
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number < high if high_open else number <= high
    if not ok:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        allowed = " and ".join(p for p in (left, right) if p) or "finite"
        kind = "an integer" if integer else "a number"
        raise ArgumentError(argument, value, f"must be {kind} {allowed}{' or null' * optional}")


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, unsafe, non-finite or lacks the requested net."""


def cli_logging(verbose: bool) -> None:
    """The console logging every command-line tool uses: warnings, or INFO with ``--verbose``."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def debug_requested(flag: bool = False) -> bool:
    """Whether full tracebacks were asked for: ``flag`` (``--debug``) or the environment."""
    return flag or any(os.environ.get(v, "") not in ("", "0") for v in _DEBUG_VARIABLES)


def error_text(err: BaseException) -> str:
    """``err`` as the CLIs print it: ``error: <message>``, continuation lines kept (lists)."""
    text = str(err).strip() or type(err).__name__
    return f"error: {text}"


def writable_dir(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Create ``path`` and check that a file can be written in it, before any work is done.

    Args:
        path: The output folder.
        option: The option or config key that named it, for the message.

    Raises:
        UserError: It cannot be created (a file is in the way, no permission, read-only
            filesystem) or nothing can be written in it.
    """
    folder = Path(path)
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"ok")
    except OSError as err:
        reason = err.strerror or type(err).__name__
        if isinstance(err, FileExistsError) or (folder.exists() and not folder.is_dir()):
            reason = "a file of that name is in the way"
        raise UserError(
            f"{option} {folder}: cannot write there ({reason}); pass a writable folder"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
