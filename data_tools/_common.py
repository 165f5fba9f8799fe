"""Plumbing shared by the data_tools CLIs: parsing, parallel work with a progress bar, summaries.

The tools import torch and the image readers inside the functions that use them, after the
arguments are parsed: ``--help`` and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realblur_gan.cli.help_format import HelpFormatter
from realblur_gan.errors import UserError, writable_dir

logger = logging.getLogger(__name__)

DONE, SKIPPED, IGNORED, FAILED = "done", "skipped", "ignored", "failed"
_LABELS = {DONE: "written", SKIPPED: "already done", IGNORED: "ignored", FAILED: "failed"}


@dataclass
class Outcome:
    """Result of one unit of work.

    ``status`` is done, skipped (its outputs already exist), ignored (an input the tool does not
    use, e.g. too small) or failed; ``message`` says why for the last two. ``value`` carries
    anything else a task reports back (it must be picklable).
    """

    status: str
    message: str = ""
    value: Any = None


@dataclass
class Report:
    """Tally of a run: counts per status and the one-line reason of every failure."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, tool: str, out: Path | str | None = None) -> str:
        parts = [f"{self.counts[status]} {label}" for status, label in _LABELS.items()]
        where = f" -> {out}" if out is not None else ""
        return f"{tool}: {', '.join(parts)} in {self.seconds:.1f} s{where}"


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every tool shares."""
    parser = argparse.ArgumentParser(
        prog=f"python -m data_tools.{prog}",
        description=description,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="parallel worker processes (1 = in this process)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _init_worker() -> None:
    # Each process works on one image at a time; torch's own threads would only oversubscribe.
    import torch

    torch.set_num_threads(1)


def _guarded(fn: Callable[[Any], Outcome], task: Any) -> Outcome:
    """Run one task; turn any error into a failed outcome with a one-line reason."""
    from realblur_gan.data.io import ImageFolderError, ImageReadError

    try:
        return fn(task)
    except (ImageReadError, ImageFolderError) as err:
        return Outcome(FAILED, str(err))
    except Exception as err:  # one bad file must not stop a long run
        logger.debug("task %r failed", task, exc_info=True)
        return Outcome(FAILED, f"{task}: {type(err).__name__}: {' '.join(str(err).split())}")


def run_tasks(
    fn: Callable[[Any], Outcome], tasks: Sequence[Any], workers: int, desc: str
) -> Report:
    """Run ``fn`` over ``tasks`` with a progress bar, in ``workers`` processes when > 1.

    ``fn`` must be a module-level function (it is pickled to the workers).
    """
    from realblur_gan.progress import progress_bar

    report = Report()
    start = time.perf_counter()
    bar = progress_bar(total=len(tasks), desc=desc, unit="item")

    def record(outcome: Outcome) -> None:
        report.counts[outcome.status] += 1
        if outcome.value is not None:
            report.values.append(outcome.value)
        if outcome.status == FAILED:
            report.failures.append(outcome.message)
        elif outcome.status == IGNORED:
            logger.warning("%s", outcome.message)
        bar.update(1)

    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            record(_guarded(fn, task))
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
            futures = [pool.submit(_guarded, fn, task) for task in tasks]
            for future in as_completed(futures):
                record(future.result())
    bar.close()
    report.seconds = time.perf_counter() - start
    return report


def finish(report: Report, tool: str, out: Path | str | None) -> int:
    """Print the failures and the one-line summary; exit status 1 when anything failed."""
    for line in report.failures:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary(tool, out))
    return 1 if report.counts[FAILED] else 0


def seed_for(seed: int, name: str) -> int:
    """A per-item seed that depends only on the run seed and the item's name.

    Results then do not depend on the worker count, the order of work or on resuming.
    """
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def all_exist(paths: Iterable[Path]) -> bool:
    return all(p.exists() for p in paths)


def relative_stem(path: Path, root: Path) -> str:
    """``a/b/c.jpg`` under ``root`` -> ``"a/b/c"``: the key that pairs files across folders."""
    return path.relative_to(root).with_suffix("").as_posix()


def unwritable(*folders: Path) -> str | None:
    """Why the first output folder that cannot be created and written fails, else None.

    Checked before any work, so a long run does not end in a write error on its first output.
    """
    for folder in folders:
        try:
            writable_dir(folder, "output folder")
        except UserError as err:
            return str(err)
    return None


def cli_error(message: str) -> int:
    """Report a usage problem (missing folder...) on one line; exit status 2 like argparse."""
    print(f"error: {message}", file=sys.stderr)
    return 2
