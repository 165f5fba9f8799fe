"""One writer per output: folder locks, cache locks, unique temporary names, new run folders."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from realblur_gan.errors import UserError
from realblur_gan.ownership import (
    LOCK_NAME,
    FolderLock,
    OutputInUseError,
    claim_cache,
    claim_folder,
    new_folder,
    unique_temp,
)

# A second process that takes the lock on a folder, says so, and holds it until killed.
HOLDER = """
import sys, time
from realblur_gan.ownership import claim_folder
claim_folder(sys.argv[1], "--out", "pass another --out")
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def other_process_holds(tmp_path: Path):
    """Start a process that holds ``--out`` on a folder; yields (folder, process)."""
    folder = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    yield folder, proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_in_one_line_naming_the_holder(other_process_holds):
    folder, proc = other_process_holds
    with pytest.raises(OutputInUseError) as caught:
        claim_folder(folder, "--out", "pass another --out")
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert f"--out {folder} is in use by PID {proc.pid} on " in message
    assert "-c" in message  # the holder's command line
    assert message.endswith("wait for it to finish, or pass another --out")


def test_the_lock_dies_with_its_holder(other_process_holds):
    """kill -9 leaves the lock file behind, but not the lock: the next writer gets it."""
    folder, proc = other_process_holds
    proc.kill()
    proc.wait()
    assert (folder / LOCK_NAME).exists()
    with claim_folder(folder, "--out", "pass another --out") as lock:
        assert lock.holder()["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()  # a release removes the file


def test_release_lets_the_next_writer_in_and_is_idempotent(tmp_path):
    first = claim_folder(tmp_path / "out", "--out", "fix")
    with pytest.raises(OutputInUseError):  # another open of the file, even in this process
        claim_folder(tmp_path / "out", "--out", "fix")
    first.release()
    first.release()
    second = claim_folder(tmp_path / "out", "--out", "fix")
    assert second.held
    second.release()


def test_an_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the folder should go")
    with pytest.raises(UserError, match=r"^--out .*taken: cannot write there .*writable folder$"):
        claim_folder(blocker, "--out", "fix")


def test_a_cache_waiter_reuses_what_the_builder_made(tmp_path, caplog):
    """The second process waits for the first instead of building into the same folder."""
    final = tmp_path / "cache" / "v1-data"
    builder = claim_cache(final, "paths.data_dir")
    done: list[bool] = []

    def waiter() -> None:
        with claim_cache(final, "paths.data_dir"):
            done.append((final / "DONE").exists())

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and not done  # waiting, not building
    final.mkdir(parents=True)
    (final / "DONE").write_text("built")
    builder.release()
    thread.join(10)
    assert done == [True]
    assert "waiting for PID" in caplog.text


def test_an_unwritable_cache_names_the_setting(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should go")
    with pytest.raises(UserError) as caught:
        claim_cache(blocker / "demo" / "v2", "paths.data_dir (or REALBLUR_GAN_DATA)")
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.endswith("set paths.data_dir (or REALBLUR_GAN_DATA) to a writable folder")


def test_a_lock_file_removed_under_a_waiter_is_not_trusted(tmp_path):
    """The holder removes the lock file as it releases; a waiter that opened the old file must
    lock the new one, or two processes would each hold a lock on a different file."""
    lock_file = tmp_path / LOCK_NAME
    holder = FolderLock(lock_file, "x", "fix").acquire()
    fd = os.open(lock_file, os.O_RDWR)  # a waiter's view of the old file
    holder.release()
    assert not FolderLock(lock_file, "x", "fix")._same_file(fd)
    os.close(fd)


def test_temporary_names_are_unique_per_process_and_call(tmp_path):
    target = tmp_path / "a.png"
    names = {unique_temp(target) for _ in range(100)}
    assert len(names) == 100
    name = next(iter(names)).name
    assert name.startswith(".a.png.") and name.endswith(".partial")
    assert f".{os.getpid()}-" in name
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from realblur_gan.ownership import unique_temp; "
            f"print(unique_temp({str(target)!r}).name)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f".{os.getpid()}-" not in other


def test_new_folder_never_hands_out_a_folder_twice(tmp_path):
    base = tmp_path / "outputs" / "joint" / "2026-01-01_12-00-00"
    made = [new_folder(base) for _ in range(3)]
    assert [p.name for p in made] == [base.name, f"{base.name}_2", f"{base.name}_3"]
    assert sorted(made) == made  # launch order is name order (resume=true takes the newest)
    assert all(p.is_dir() for p in made)


def test_a_forked_child_does_not_keep_a_dead_owners_lock(tmp_path: Path) -> None:
    # A data-loader worker is a fork of the owner: after a kill -9 of the owner it lives on for
    # a few seconds, and it must not hold the run dir for that long.
    lock_file = tmp_path / LOCK_NAME
    owner = (
        "import os, sys, time\n"
        "from realblur_gan.ownership import FolderLock\n"
        f"FolderLock({str(lock_file)!r}, 'run dir', 'wait').acquire()\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    null = os.open(os.devnull, os.O_RDWR)\n"
        "    os.dup2(null, 1), os.dup2(null, 2)  # the test reads the owner's output to its end\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "print(child, flush=True)\n"
        "os._exit(0)  # the owner dies without releasing, as under kill -9\n"
    )
    done = subprocess.run([sys.executable, "-c", owner], capture_output=True, text=True)
    child = int(done.stdout)
    try:
        os.kill(child, 0)  # the forked child is still alive
        with FolderLock(lock_file, "run dir", "wait"):
            pass
    finally:
        os.kill(child, 9)
