"""One writer per output: advisory folder locks and per-process temporary names.

Every folder a command writes into (a training run dir, an experiment's ``--out``, the
``--out`` of ``realblur-deblur`` / ``realblur-evaluate`` / export, a data cache) is owned by one
process at a time through :class:`FolderLock`: an ``fcntl.flock`` on a lock file that records
who holds it (PID, host, command, start time). A second writer is either refused with one line
naming the holder and the fix (:class:`OutputInUseError`), or, for a cache that the first writer
is building, waits for it and then reuses what it built.

The lock is the kernel's: it goes away with the process that holds it (``kill -9`` included),
so a lock file left behind by a crash never blocks anyone. :func:`unique_temp` names the
temporary file of an atomic write after the process and a random suffix, so two processes
writing the same target never share (or delete) each other's temporary file.

:mod:`realblur_gan.training.run_dir` builds on it for training: a Hydra callback that gives every
launch
a run dir of its own before Hydra writes anything into it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

from realblur_gan.errors import UserError, writable_dir

log = logging.getLogger(__name__)

__all__ = [
    "LOCK_NAME",
    "FolderLock",
    "OutputInUseError",
    "claim_cache",
    "claim_folder",
    "holder_text",
    "new_folder",
    "unique_temp",
]

# Hidden, so image listings and checkpoint globs pass it over.
LOCK_NAME = ".realblur-gan.lock"
# The holder's command line is cut to this many characters in a refusal.
_COMMAND_CHARS = 100


# Every lock this process holds. A forked child (a data-loader worker) inherits their file
# descriptors, and with them the flock: after a `kill -9` of the owner, workers still alive
# for a few seconds kept the run dir locked and the resume was refused. The child closes its
# copies at once (that leaves the parent's lock in place) and forgets it holds them.
_HELD: set[FolderLock] = set()


def _drop_inherited_locks() -> None:
    for lock in list(_HELD):
        if lock._fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock._fd)
            lock._fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


class OutputInUseError(UserError, RuntimeError):
    """Another live process writes into the folder; the message names it and the fix."""


def unique_temp(path: str | os.PathLike[str]) -> Path:
    """A temporary name beside ``path`` that no other process (or call) will use.

    Hidden and ending in ``.partial``: listings skip it and nothing mistakes it for a result.

    Example:
        >>> unique_temp("out/a.png").name  # doctest: +SKIP
        '.a.png.12345-9f3a61c2.partial'
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def _command() -> str:
    """This process's command line as typed: ``python -m realblur_gan ...``, ``realblur-deblur
    ...``."""
    argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    if "-m" in argv[1:-1]:
        return " ".join(["python", *argv[argv.index("-m", 1) :]])
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""


def _this_holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def holder_text(info: dict[str, Any]) -> str:
    """``PID 123 on host (cmd ...) since 2026-01-01 12:00:00``, or a plain phrase if unknown."""
    if not info.get("pid"):
        return "another process"
    command = str(info.get("command", ""))
    if len(command) > _COMMAND_CHARS:
        command = command[: _COMMAND_CHARS - 3] + "..."
    text = f"PID {info['pid']} on {info.get('host', '?')}"
    if command:
        text += f" ({command})"
    if info.get("since"):
        text += f" since {info['since']}"
    return text


class FolderLock:
    """An exclusive advisory lock on one output, held by this process until released.

    Args:
        lock_file: The lock file (created; removed again on release).
        what: What is locked, for messages, e.g. ``"run dir outputs/joint/..."``.
        fix: What a refused writer should do instead, e.g. ``"pass another --out"``.
        unwritable_fix: What to do when the lock file cannot be created.
    """

    def __init__(
        self,
        lock_file: str | os.PathLike[str],
        what: str,
        fix: str,
        unwritable_fix: str = "pass a writable folder",
    ) -> None:
        self.path = Path(lock_file)
        self.what = what
        self.fix = fix
        self.unwritable_fix = unwritable_fix
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> dict[str, Any]:
        """What the lock file says about its holder ({} when unreadable or not written yet)."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self, wait: bool = False) -> FolderLock:
        """Take the lock, or refuse (``wait=False``) or wait (``wait=True``) while another has it.

        Raises:
            OutputInUseError: Another process holds it and ``wait`` is False.
            UserError: The lock file cannot be created (read-only folder, no permission).
        """
        if self._fd is not None:
            return self
        said = False
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = self.holder()
                if not wait:
                    raise OutputInUseError(
                        f"{self.what} is in use by {holder_text(holder)}; wait for it to "
                        f"finish, or {self.fix}"
                    ) from None
                if not said:
                    log.warning("%s: waiting for %s to finish", self.what, holder_text(holder))
                    said = True
                time.sleep(0.2)
                continue
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else will find. Start again on the new one.
            if self._same_file(fd):
                break
            os.close(fd)
        self._fd = fd
        _HELD.add(self)
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_this_holder()) + "\n").encode())
        return self

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UserError(
                f"{self.what}: cannot write there ({err.strerror or err}); {self.unwritable_fix}"
            ) from None

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def release(self) -> None:
        """Give the lock up and remove the lock file (idempotent)."""
        if self._fd is None:
            return
        # Removed while still held: a waiter that opened this file sees it gone and retries.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)  # closing drops the flock
        self._fd = None
        _HELD.discard(self)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_folder(
    folder: str | os.PathLike[str], option: str, fix: str, wait: bool = False
) -> FolderLock:
    """Create ``folder``, check it is writable, and take its lock (see :class:`FolderLock`).

    Args:
        folder: The output folder.
        option: The option or key that named it, for messages (``"--out"``, ``"hydra.run.dir"``).
        fix: What a refused writer should do instead.
        wait: Wait for the holder instead of refusing.

    Returns:
        The held lock; release it (or use it as a context manager) when the writing is done.

    Raises:
        UserError: The folder cannot be created or written (one line naming it).
        OutputInUseError: Another process holds it and ``wait`` is False.
    """
    writable_dir(folder, option)
    lock = FolderLock(Path(folder) / LOCK_NAME, f"{option} {folder}", fix)
    return lock.acquire(wait=wait)


def new_folder(base: str | os.PathLike[str]) -> Path:
    """Create ``base``, or ``base_2``, ``base_3``... when it exists: a folder no one else has.

    ``mkdir`` either creates the folder or fails, atomically, so two launches that name their
    output after the same second get different folders (which still sort in launch order).

    Raises:
        OSError: The parent cannot be created or written.
    """
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = base if n == 1 else base.with_name(f"{base.name}_{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise UserError(f"{base}: 999 folders of that name exist; clean up {base.parent}")


def claim_cache(folder: str | os.PathLike[str], setting: str) -> FolderLock:
    """Lock a cache folder for building it; while another process builds it, wait for that one.

    The lock file sits beside the folder (``.<name>.lock``), which is built under a temporary
    name and renamed into place. After this returns, check again whether the folder is complete:
    the process waited for has usually built it.

    Args:
        folder: The cache folder (it need not exist yet).
        setting: The key or variable that places the cache, named when it cannot be written,
            e.g. ``"paths.data_dir (or REALBLUR_GAN_DATA)"``.

    Returns:
        The held lock.

    Raises:
        UserError: The cache's parent folder cannot be written (one line naming ``setting``).
    """
    folder = Path(folder)
    lock = FolderLock(
        folder.with_name(f".{folder.name}.lock"),
        f"cache {folder}",
        fix="",
        unwritable_fix=f"set {setting} to a writable folder",
    )
    return lock.acquire(wait=True)
