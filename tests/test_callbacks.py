"""RNGState: the global random streams go into checkpoints and come back on resume."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from realblur_gan.training.callbacks import RNGState


def draws() -> tuple[torch.Tensor, np.ndarray, float]:
    return torch.rand(3), np.random.rand(3), random.random()


def assert_same(a: tuple, b: tuple) -> None:
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


def saved_and_reloaded(checkpoint: dict) -> dict:
    """Through a file read as resume reads it (``weights_only=True``)."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_rng_streams_continue_where_the_checkpoint_was_taken():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    np.random.randn()  # a cached Gaussian is part of numpy's state
    checkpoint: dict = {}
    RNGState().on_save_checkpoint(None, None, checkpoint)
    expected = draws()
    draws()  # the streams move on, as an interrupted run's would
    RNGState().on_load_checkpoint(None, None, saved_and_reloaded(checkpoint))
    assert_same(draws(), expected)


def test_checkpoints_written_by_the_module_still_restore():
    # Before the callback, the LightningModule wrote the same `rng_states` entry itself.
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    old = {
        "rng_states": {
            "torch": torch.get_rng_state(),
            "cuda": [],
            "numpy": {
                "name": name,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "python": [version, list(internal), gauss],
        }
    }
    expected = draws()
    RNGState().on_load_checkpoint(None, None, saved_and_reloaded(old))
    assert_same(draws(), expected)


def test_checkpoint_without_rng_states_leaves_the_streams_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    RNGState().on_load_checkpoint(None, None, {})
    torch.testing.assert_close(torch.rand(2), expected, rtol=0, atol=0)
