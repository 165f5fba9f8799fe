"""Progress bars for long work that also report when stderr is a log file or a pipe.

tqdm switches itself off (``disable=None``) when stderr is not a terminal, so a job whose output
goes to a file showed nothing for minutes (blind MAP at its default 8000 iterations: 4 minutes).
:func:`progress_bar` keeps the usual bar on a terminal; elsewhere it writes nothing for work
that ends within :data:`QUIET_SECONDS`, then one plain line every :data:`LOG_INTERVAL` seconds
and a last line when the work ends.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["LOG_INTERVAL", "QUIET_SECONDS", "progress_bar"]

#: Off a terminal: no line for work shorter than this (seconds), then a line this often.
QUIET_SECONDS = 5.0
LOG_INTERVAL = 30.0


class _Lines(io.TextIOBase):
    """A stream that turns tqdm's in-place redraws into one line per refresh.

    tqdm redraws with ``\\r`` and clears a finished ``leave=False`` bar with blanks; in a file
    those pile up on one line. Here every non-blank redraw becomes its own line.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = True,
) -> tqdm:
    """A tqdm bar on stderr: drawn in place on a terminal, logged as lines elsewhere.

    Args:
        iterable: what to iterate over, or None to call ``update`` by hand.
        total: the number of steps (taken from ``iterable`` when it has a length).
        desc: the bar's label.
        unit: what one step is.
        enabled: False shows nothing.
        leave: keep the finished bar on a terminal (off a terminal the last line always stays).

    Returns:
        The bar; use it as a context manager or call ``close()``.
    """
    stream = sys.stderr
    if stream is None or not enabled:
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True)
    if stream.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=_Lines(stream),
        delay=QUIET_SECONDS,
        mininterval=LOG_INTERVAL,
        maxinterval=LOG_INTERVAL,
        ascii=True,
    )
