"""Exact resume: an interrupted run continues to the very weights of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, make_config

from realblur_gan.training.callbacks import PeriodicCheckpoint
from realblur_gan.training.runner import run

RESUMABLE = [
    "logger=none",
    "checkpoint_every_n_batches=1",
    "trainer.limit_train_batches=3",
    "stages.pretrain_bgan.trainer.max_epochs=1",
    "stages.joint.trainer.max_epochs=2",
    "optim=linear_decay",
]


class Crash(RuntimeError):
    """Stands in for a killed process."""


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_interrupted_run_resumes_to_identical_weights(tmp_path, demo_cache, monkeypatch):
    ref = run(make_config("joint", tmp_path / "ref", demo_cache, RESUMABLE))
    expected = _weights(ref.checkpoints["joint"])

    # Same command, killed in the joint stage right after its 4th batch's checkpoint (mid-way
    # through epoch 2, after a validation and a scheduler step).
    original = PeriodicCheckpoint.on_train_batch_end

    def crash_after(self, trainer, module, *args):
        original(self, trainer, module, *args)
        if self.path.parent.name == "joint" and self._batches == 4:
            raise Crash("simulated kill")

    monkeypatch.setattr(PeriodicCheckpoint, "on_train_batch_end", crash_after)
    out = tmp_path / "interrupted"
    with pytest.raises(Crash):
        run(make_config("joint", out, demo_cache, RESUMABLE))
    assert (out / "checkpoints" / "pretrain_bgan" / "DONE").exists()
    assert not (out / "checkpoints" / "joint" / "DONE").exists()
    monkeypatch.setattr(PeriodicCheckpoint, "on_train_batch_end", original)

    resumed = run(make_config("joint", tmp_path / "new", demo_cache, [*RESUMABLE, f"resume={out}"]))
    assert resumed.output_dir == out
    got = _weights(resumed.checkpoints["joint"])
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash half-way through writing leaves the previous last.ckpt intact and readable."""
    import realblur_gan.weights.checkpoints as checkpoints

    io = checkpoints.AtomicCheckpointIO()  # what every Trainer.save_checkpoint of a run uses
    last = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}}, last)
    before = last.read_bytes()

    def dies_half_way(handle, data):
        handle.write(bytes(data[: len(data) // 2]))
        raise OSError("killed while writing")

    monkeypatch.setattr(checkpoints, "_write_all", dies_half_way)
    with pytest.raises(OSError):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}}, last)
    monkeypatch.undo()
    assert last.read_bytes() == before
    assert torch.equal(torch.load(last, weights_only=True)["state_dict"]["w"], torch.ones(1000))


@pytest.mark.slow
def test_kill_9_then_resume_from_the_cli(tmp_path, demo_cache):
    """The real thing: SIGKILL mid-stage, rerun the same command with resume=<run dir>."""
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "realblur_gan",
        "+scheme=separate",
        *TINY,
        *RESUMABLE[:2],
        "trainer.limit_train_batches=6",
        "stages.dbgan.trainer.max_epochs=3",
        f"paths.data_dir={demo_cache}",
        f"hydra.run.dir={out}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    marker = out / "checkpoints" / "dbgan" / "last.ckpt"
    deadline = time.time() + 600
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoints" / "dbgan" / "DONE").exists()
    done = subprocess.run(
        [*args, f"resume={out}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "checkpoints" / "dbgan" / "DONE").exists()
    assert "blurry input" in done.stdout


# --------------------------------------------------------------------------------------------------
# Killed between two stages (issue 25): the next stage starts from its own seed
# --------------------------------------------------------------------------------------------------


def test_every_stage_starts_from_its_own_seed(tmp_path, demo_cache, monkeypatch):
    """The random state a stage starts with depends on the seed and the stage name alone: not
    on whether the stages before it ran in this process (a fresh process resuming after them,
    ``start_stage=``) nor on what they drew."""
    import realblur_gan.training.runner as train

    starts: dict[str, list[torch.Tensor]] = {}

    def record(cfg, name, *args, **kwargs):
        starts.setdefault(name, []).append(torch.get_rng_state())
        torch.rand(1000 if name == "pretrain_bgan" else 10)  # a stage draws what it draws

    monkeypatch.setattr(train, "_run_stage", record)
    run(make_config("joint", tmp_path / "a", demo_cache, ["logger=none"]))
    torch.rand(7)  # whatever the process did before
    run(make_config("joint", tmp_path / "b", demo_cache, ["logger=none", "start_stage=joint"]))
    run(make_config("joint", tmp_path / "c", demo_cache, ["logger=none", "seed=1"]))
    first, later, other_seed = starts["joint"]
    assert torch.equal(first, later)
    assert not torch.equal(first, other_seed)
    assert not torch.equal(starts["pretrain_bgan"][0], first)
