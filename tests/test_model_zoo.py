"""The named-model registry and torch.hub: the packaged model is found by name, its file is the
one the registry's SHA-256 names, and anything else is refused in one line."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from realblur_gan.errors import UserError
from realblur_gan.weights import model_zoo
from realblur_gan.weights.checkpoints import CheckpointError
from realblur_gan.weights.model_zoo import (
    DEFAULT_MODEL,
    MODELS,
    file_sha256,
    get_model,
    packaged_model,
    verified_path,
)

ROOT = Path(__file__).resolve().parents[1]


def test_the_packaged_model_is_the_first_entry_and_its_hash_matches_the_file() -> None:
    assert next(iter(MODELS)) == DEFAULT_MODEL == "realblur-dbgan"
    entry = get_model(DEFAULT_MODEL)
    assert entry.path.parent == ROOT / "realblur_gan" / "weights"
    # Computed here from the file, compared with the one place the hash is written.
    assert file_sha256(entry.path) == entry.sha256
    assert verified_path() == packaged_model() == entry.path


@pytest.mark.parametrize("name", list(MODELS))
def test_every_named_model_is_shipped_with_its_registered_hash(name: str) -> None:
    entry = get_model(name)
    assert file_sha256(entry.path) == entry.sha256
    assert verified_path(name) == entry.path
    assert entry.description


def test_a_changed_file_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = MODELS[DEFAULT_MODEL]
    copy = tmp_path / entry.file
    shutil.copyfile(entry.path, copy)
    with copy.open("r+b") as handle:  # one flipped byte deep in the weights
        handle.seek(copy.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(model_zoo, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError) as caught:
        verified_path()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert str(copy) in message and entry.sha256[:12] in message and "model_zoo.py" in message


def test_a_registry_entry_with_another_hash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = replace(MODELS[DEFAULT_MODEL], sha256="0" * 64)
    monkeypatch.setitem(MODELS, DEFAULT_MODEL, wrong)
    with pytest.raises(CheckpointError, match="damaged or was replaced"):
        model_zoo.load_pretrained()


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(UserError, match="no pretrained model named 'nope'; choose from realblur"):
        get_model("nope")


def test_torch_hub_loads_the_packaged_model_from_a_local_clone() -> None:
    deblur = torch.hub.load(str(ROOT), "realblur_dbgan", source="local", device="cpu")
    assert type(deblur).__name__ == "Deblurrer"
    photo = np.full((24, 40, 3), 128, np.uint8)
    out = deblur(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
