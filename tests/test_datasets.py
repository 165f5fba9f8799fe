"""The data layer's spec: items, pairing under augmentation, sources, seeds, splits, bad input."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from data_tools.ab import ConcatJob, concat_pair
from realblur_gan.data.datamodule import BlurDataModule, ab_pairs, match_pairs
from realblur_gan.data.datasets import (
    PairedEvalSet,
    UnpairedTrainSet,
    probe_image,
    random_flip_rotate,
    resize_shorter,
)
from realblur_gan.data.io import ImageFolderError, ImageReadError, list_images, read_image
from realblur_gan.errors import DataError
from realblur_gan.training.config import CONFIG_DIR

SHARED = SHARED_DATA
TRAIN_KEYS = {"sharp", "blur_syn", "blur_real"}
EVAL_KEYS = {"blur", "sharp", "name"}


# --------------------------------------------------------------------------------------------------
# Helpers: tiny generated images
# --------------------------------------------------------------------------------------------------


def noise(h: int, w: int, seed: int) -> np.ndarray:
    """Random uint8 RGB pixels: any misaligned crop, flip or turn shows up as a mismatch."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def image_folder(folder: Path, n: int, h: int = 40, w: int = 48, seed: int = 0) -> Path:
    for i in range(n):
        save(folder / f"{i:03d}.png", noise(h, w, seed + i))
    return folder


def pair_folders(root: Path, n: int, h: int = 40, w: int = 48, seed: int = 100) -> Path:
    """``root/blur`` + ``root/sharp`` where blur = 255 - sharp: the pairing is checkable."""
    for i in range(n):
        sharp = noise(h, w, seed + i)
        save(root / "sharp" / f"{i:03d}.png", sharp)
        save(root / "blur" / f"{i:03d}.png", 255 - sharp)
    return root


def identity(image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return image.clone()


class MarginIdentity:
    """Identity "blur" that asks for a margin, like a real kernel would."""

    kernel_size = (5, 9)

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None):
        return image.clone()


def corrupt_files(folder: Path) -> dict[str, Path]:
    """The bad files users actually have, next to good ones."""
    folder.mkdir(parents=True, exist_ok=True)
    good = Image.fromarray(noise(40, 48, 7))
    png, jpeg = io.BytesIO(), io.BytesIO()
    good.save(png, "PNG")
    good.save(jpeg, "JPEG")
    data = png.getvalue()
    bad = {
        "truncated": folder / "truncated.png",
        "zero": folder / "zero.png",
        "text": folder / "text.png",
        "corrupt": folder / "corrupt.jpg",
    }
    bad["truncated"].write_bytes(data[: len(data) // 2])
    bad["zero"].write_bytes(b"")
    bad["text"].write_text("not an image, just named like one\n")
    # A JPEG whose headers are intact but whose compressed data stops: only decoding finds it.
    bad["corrupt"].write_bytes(jpeg.getvalue()[:700])
    return bad


def datamodule(tmp_path: Path, **kwargs) -> BlurDataModule:
    """A small BlurDataModule; folders not given are generated (only then, so no test's own
    folder gets extra files)."""
    options = {
        "crop_size": 32,
        "batch_size": 2,
        "val_batch_size": 2,
        "val_crop_size": 32,
        "num_workers": 0,
        "seed": 0,
        **kwargs,
    }
    if "real_blur_dir" not in kwargs:
        options["real_blur_dir"] = image_folder(tmp_path / "real", 3, 36, 44, seed=50)
    if "pairs_dir" not in kwargs:
        options.setdefault("synthetic_blur", identity)
        options.setdefault("val_blur", identity)
        if "sharp_dir" not in kwargs:
            options["sharp_dir"] = image_folder(tmp_path / "sharp", 8)
    return BlurDataModule(**options)


def batches(dm: BlurDataModule, n: int | None = None) -> list[dict]:
    out = []
    for i, batch in enumerate(dm.train_dataloader()):
        if n is not None and i >= n:
            break
        out.append(batch)
    return out


def symmetries(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/turns of a square crop."""
    return [t.rot90(k, dims=(-2, -1)) for t in (x, x.flip(-1)) for k in range(4)]


def is_crop_of(crop: torch.Tensor, image: torch.Tensor) -> bool:
    """Whether some flip/turn of ``crop`` is an exact window of ``image``."""
    size = crop.shape[-1]
    _, h, w = image.shape
    for s in symmetries(crop):
        # Noise images: only about one place matches the corner pixel; check those in full.
        corner = (image[:, : h - size + 1, : w - size + 1] == s[:, :1, :1]).all(0)
        for top, left in corner.nonzero().tolist():
            if torch.equal(image[:, top : top + size, left : left + size], s):
                return True
    return False


# --------------------------------------------------------------------------------------------------
# Items and pairing
# --------------------------------------------------------------------------------------------------


def test_training_items_vocabulary_shapes_and_range(tmp_path: Path) -> None:
    from realblur_gan.camera import SimpleBlur

    dm = datamodule(tmp_path, synthetic_blur=SimpleBlur(kernel_size=(3, 7)))
    dm.setup()
    batch = batches(dm, 1)[0]
    assert set(batch) == TRAIN_KEYS
    for x in batch.values():
        assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    val = next(iter(dm.val_dataloader()))
    assert set(val) == EVAL_KEYS and val["blur"].shape == val["sharp"].shape == (1, 3, 32, 32)


@pytest.mark.parametrize("blur", [identity, MarginIdentity()], ids=["no-margin", "margin"])
def test_on_the_fly_pair_is_the_same_crop_under_flips_and_turns(tmp_path: Path, blur) -> None:
    sharp = image_folder(tmp_path / "sharp", 4)
    real = image_folder(tmp_path / "real", 2, seed=9)
    ds = UnpairedTrainSet(list_images(sharp), list_images(real), 32, synthetic_blur=blur)
    torch.manual_seed(0)
    for i in range(12):
        item = ds[i % 4]
        assert torch.equal(item["sharp"], item["blur_syn"])
        source = read_image(ds.sharp[i % 4])[0]
        assert is_crop_of(item["sharp"], source), "the crop is not a window of its own photo"
        assert any(is_crop_of(item["blur_real"], read_image(p)[0]) for p in ds.real_blur)


def test_a_stage_that_reads_no_synthetic_pairs_gets_none_made(tmp_path: Path) -> None:
    calls = []

    def counting(image: torch.Tensor, generator=None) -> torch.Tensor:
        calls.append(1)
        return image

    sharp = image_folder(tmp_path / "sharp", 4)
    real = image_folder(tmp_path / "real", 2, seed=9)
    ds = UnpairedTrainSet(list_images(sharp), list_images(real), 32, synthetic_blur=counting)
    ds.synthetic = False
    item = ds[0]
    assert set(item) == {"sharp", "blur_real"} and not calls
    assert item["sharp"].shape == (3, 32, 32)
    assert is_crop_of(item["sharp"], read_image(ds.sharp[0])[0])
    ds.synthetic = True
    assert set(ds[0]) == TRAIN_KEYS and len(calls) == 1


def test_datamodule_switch_reaches_its_training_set(tmp_path: Path) -> None:
    from realblur_gan.camera import SimpleBlur

    dm = datamodule(tmp_path, synthetic_blur=SimpleBlur(kernel_size=(3, 7)))
    dm.synthetic_pairs = False  # before setup: the set is built with it
    dm.setup()
    assert set(batches(dm, 1)[0]) == {"sharp", "blur_real"}
    dm.synthetic_pairs = True  # after setup: the built set follows
    assert set(batches(dm, 1)[0]) == TRAIN_KEYS


def test_cached_images_are_decoded_once(tmp_path: Path, monkeypatch) -> None:
    import realblur_gan.data.datasets as datasets

    reads = []
    real_read = datasets.read_image
    monkeypatch.setattr(datasets, "read_image", lambda p: reads.append(p) or real_read(p))
    sharp = image_folder(tmp_path / "sharp", 3)
    real = image_folder(tmp_path / "real", 2, seed=9)
    pairs = match_pairs(pair_folders(tmp_path / "pairs", 2), "blur", "sharp")
    ds = UnpairedTrainSet(
        list_images(sharp),
        list_images(real),
        32,
        synthetic_blur=identity,
        cache=True,
        real_pairs=pairs,
        real_pairs_ratio=0.5,
    )
    for _ in range(6):
        for i in range(3):
            ds[i]
    assert len(reads) == len(set(reads)) <= 9
    uncached = UnpairedTrainSet(list_images(sharp), list_images(real), 32, synthetic_blur=identity)
    reads.clear()
    for i in range(3):
        uncached[i]
    assert len(reads) == 6  # one sharp and one real image per item


@pytest.mark.parametrize("bits", [8, 16])
def test_the_cache_returns_exactly_what_loading_returns(tmp_path: Path, bits: int) -> None:
    from realblur_gan.data.datasets import MemoryCache, load
    from realblur_gan.data.io import write_image

    path = tmp_path / "photo.png"
    if bits == 8:
        save(path, noise(20, 24, 3))
    else:
        write_image(path, torch.rand(3, 20, 24), bit_depth=16)
    cache = MemoryCache()
    for channels in (3, 1, 3):
        assert torch.equal(cache.load(path, channels), load(path, channels))
    assert len(cache) == 1
    stored = next(iter(cache._images.values()))
    assert stored.dtype == (torch.uint8 if bits == 8 else torch.float32)


def test_flips_and_turns_cover_the_eight_symmetries() -> None:
    x = torch.arange(9.0).view(1, 3, 3)
    torch.manual_seed(0)
    seen = {tuple(random_flip_rotate([x])[0].flatten().tolist()) for _ in range(200)}
    assert len(seen) == 8
    assert {tuple(random_flip_rotate([x], flip=False, rotate=False)[0].flatten().tolist())} == {
        tuple(x.flatten().tolist())
    }


def test_paired_folders_keep_pairing_under_augmentation(tmp_path: Path) -> None:
    pairs = match_pairs(pair_folders(tmp_path / "pairs", 5))
    ds = UnpairedTrainSet(None, list_images(image_folder(tmp_path / "real", 2)), 32, pairs=pairs)
    torch.manual_seed(1)
    for i in range(15):
        item = ds[i % 5]
        torch.testing.assert_close(item["blur_syn"], 1.0 - item["sharp"], atol=1e-6, rtol=0)
        assert is_crop_of(item["sharp"], read_image(pairs[i % 5].sharp)[0])


def test_nested_gopro_layout_pairs_by_sequence_and_ignores_other_folders(tmp_path: Path) -> None:
    root = tmp_path / "GOPRO"
    for seq in ("GOPR0001", "GOPR0002"):
        pair_folders(root / seq, 2)
        image_folder(root / seq / "blur_gamma", 2)
    (root / "README.txt").write_text("GoPro")
    pairs = match_pairs(root)
    assert [p.name for p in pairs] == [
        "GOPR0001/000.png",
        "GOPR0001/001.png",
        "GOPR0002/000.png",
        "GOPR0002/001.png",
    ]
    assert all(p.blur.parent.name == "blur" and p.sharp.parent.name == "sharp" for p in pairs)
    gamma = match_pairs(root, "blur_gamma", "sharp")
    assert all(p.blur.parent.name == "blur_gamma" for p in gamma)


def test_pair_folder_names_are_configurable_and_case_insensitive(tmp_path: Path) -> None:
    root = pair_folders(tmp_path / "realblur", 2)
    (root / "blur").rename(root / "Blur")
    (root / "sharp").rename(root / "GT")
    pairs = match_pairs(root, "blur", "gt")
    assert [p.name for p in pairs] == ["000.png", "001.png"]
    assert pairs[0].sharp == root / "GT" / "000.png"


def test_ab_images_from_data_tools_split_into_blur_and_sharp(tmp_path: Path) -> None:
    pair_root = pair_folders(tmp_path / "pairs", 3)
    ab_dir = tmp_path / "ab"
    for i in range(3):
        name = f"{i:03d}"
        job = ConcatJob(
            pair_root / "blur" / f"{name}.png",
            pair_root / "sharp" / f"{name}.png",
            ab_dir / f"{name}.png",
        )
        concat_pair(job)
    left = PairedEvalSet(ab_pairs(ab_dir, "left"), crop_size=None)
    item = left[1]
    assert set(item) == EVAL_KEYS and item["name"] == "001.png"
    assert torch.equal(item["blur"], read_image(pair_root / "blur" / "001.png")[0])
    assert torch.equal(item["sharp"], read_image(pair_root / "sharp" / "001.png")[0])
    right = PairedEvalSet(ab_pairs(ab_dir, "right"), crop_size=None)[1]
    assert torch.equal(right["blur"], item["sharp"]) and torch.equal(right["sharp"], item["blur"])

    dm = datamodule(tmp_path, pairs_dir=ab_dir, pairs_format="ab", val_fraction=0.34)
    dm.setup()
    assert len(dm.train_set) == 2 and len(dm.val_set) == 1
    for batch in batches(dm):
        torch.testing.assert_close(batch["blur_syn"], 1.0 - batch["sharp"], atol=1e-6, rtol=0)


def test_evaluation_items_keep_their_size_or_the_centre_crop(tmp_path: Path) -> None:
    # No cropping to the nets' stride: validation pads to it and crops back.
    pairs = match_pairs(pair_folders(tmp_path / "val", 2, h=37, w=50))
    item = PairedEvalSet(pairs, crop_size=None)[0]
    assert item["blur"].shape == item["sharp"].shape == (3, 37, 50)
    torch.testing.assert_close(item["blur"], 1.0 - item["sharp"], atol=1e-6, rtol=0)
    assert PairedEvalSet(pairs, crop_size=24)[1]["blur"].shape == (3, 24, 24)
    assert PairedEvalSet(pairs, crop_size=40)[1]["blur"].shape == (3, 37, 40)


def test_gray_channels(tmp_path: Path) -> None:
    dm = datamodule(tmp_path, channels=1)
    dm.setup()
    batch = batches(dm, 1)[0]
    assert all(x.shape[1] == 1 for x in batch.values())


def test_resize_then_crop(tmp_path: Path) -> None:
    (a, b) = resize_shorter([torch.rand(3, 40, 80), torch.rand(3, 40, 80)], 60)
    assert a.shape == b.shape == (3, 60, 120)
    pairs = pair_folders(tmp_path / "pairs", 3, h=30, w=60)
    dm = datamodule(tmp_path, pairs_dir=pairs, resize=48, crop_size=40, val_fraction=0.34)
    dm.setup()
    for batch in batches(dm):
        assert batch["sharp"].shape == batch["blur_real"].shape == (2, 3, 40, 40)
        # Resizing is linear, so blur = 1 - sharp survives it exactly up to rounding.
        torch.testing.assert_close(batch["blur_syn"], 1.0 - batch["sharp"], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"resize=16: must be at least crop_size \(32\)"):
        datamodule(tmp_path, resize=16)


# --------------------------------------------------------------------------------------------------
# Seeds and splits
# --------------------------------------------------------------------------------------------------


def _run(tmp_path: Path, seed: int) -> list[dict]:
    from realblur_gan.camera import SimpleBlur

    # The data stream follows the DataModule's seed alone (keyed items, seeded epoch order), not
    # torch's global generator, so a resumed run replays it exactly.
    dm = datamodule(tmp_path, synthetic_blur=SimpleBlur(kernel_size=(3, 7)), seed=seed)
    dm.setup()
    torch.manual_seed(1234 + seed)  # the global stream must not matter
    return batches(dm)


def test_a_seed_reproduces_crops_flips_kernels_and_real_draws(tmp_path: Path) -> None:
    first, again, other = _run(tmp_path, 3), _run(tmp_path, 3), _run(tmp_path, 4)
    for b1, b2 in zip(first, again, strict=True):
        assert all(torch.equal(b1[k], b2[k]) for k in TRAIN_KEYS)
    assert not all(
        torch.equal(b1["blur_syn"], b3["blur_syn"]) for b1, b3 in zip(first, other, strict=True)
    )


def test_held_out_split_sizes_disjoint_and_seeded(tmp_path: Path) -> None:
    sharp = image_folder(tmp_path / "sharp", 20)
    splits = {}
    for seed in (0, 0, 1):
        dm = datamodule(tmp_path, sharp_dir=sharp, val_fraction=0.2, seed=seed)
        dm.setup()
        assert len(dm.train_set) == 16 and len(dm.val_set) == 4
        val_names = {dm.val_set[i]["name"] for i in range(4)}
        assert not val_names & {p.name for p in dm.train_set.sharp}
        splits.setdefault(seed, []).append(val_names)
    assert splits[0][0] == splits[0][1] != splits[1][0]


def test_several_folders_per_role_are_read_in_turn(tmp_path: Path) -> None:
    a = image_folder(tmp_path / "a", 4)
    b = image_folder(tmp_path / "b", 3, seed=20)
    real = [image_folder(tmp_path / f"real{i}", 2, seed=40 + 10 * i) for i in range(2)]
    dm = datamodule(tmp_path, sharp_dir=[str(a), b], real_blur_dir=real, val_fraction=0.3)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 7 and len(dm.train_set.real_blur) == 4
    assert {p.parent.name for p in dm.train_set.sharp} == {"a", "b"}
    # Held-out names say which folder they came from.
    names = {dm.val_set[i]["name"] for i in range(len(dm.val_set))}
    assert all(n.split("/")[0] in ("a", "b") for n in names), names


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_real_pairs_stand_in_for_a_share_of_the_synthetic_pairs(tmp_path: Path, ratio) -> None:
    # Synthetic pairs are the identity here and real pairs are 255 - sharp: each item says
    # where its pair came from.
    pairs = [pair_folders(tmp_path / f"pairs{i}", 3, seed=100 + 10 * i) for i in range(2)]
    dm = datamodule(
        tmp_path,
        val_dir=pair_folders(tmp_path / "val", 2, seed=300),
        real_pairs_dir=pairs,
        real_pairs_ratio=ratio,
    )
    dm.setup()
    assert len(dm.train_set.real_pairs) == 6
    real_sources = [read_image(p.sharp)[0] for p in dm.train_set.real_pairs]
    from_real = 0
    for batch in batches(dm, 4):
        for sharp, blur in zip(batch["sharp"], batch["blur_syn"], strict=True):
            if torch.equal(sharp, blur):
                continue
            torch.testing.assert_close(blur, 1.0 - sharp, atol=1e-6, rtol=0)
            assert any(is_crop_of(sharp, source) for source in real_sources)
            from_real += 1
    assert from_real == {0.0: 0, 1.0: 8}.get(ratio, from_real)
    assert ratio != 0.5 or 0 < from_real < 8
    # A stage that reads no synthetic pairs gets no real pairs either.
    dm.synthetic_pairs = False
    assert "blur_syn" not in dm.train_set[0]


def test_real_pairs_ratio_without_pairs_is_refused(tmp_path: Path) -> None:
    from realblur_gan.errors import ArgumentError, DataError

    with pytest.raises(DataError, match=r"real_pairs_ratio > 0 needs data\.real_pairs_dir"):
        datamodule(tmp_path, real_pairs_ratio=0.5)
    with pytest.raises(
        ArgumentError, match=r"real_pairs_ratio=1.5: must be a number >= 0 and <= 1"
    ):
        datamodule(tmp_path, real_pairs_dir=tmp_path, real_pairs_ratio=1.5)


def test_pairs_without_val_dir_hold_out_pairs(tmp_path: Path) -> None:
    dm = datamodule(tmp_path, pairs_dir=pair_folders(tmp_path / "pairs", 10), val_fraction=0.3)
    dm.setup()
    assert len(dm.train_set) == 7 and len(dm.val_set) == 3
    item = dm.val_set[0]
    torch.testing.assert_close(item["blur"], 1.0 - item["sharp"], atol=1e-6, rtol=0)


def test_val_dir_paired_folders(tmp_path: Path) -> None:
    dm = datamodule(tmp_path, val_dir=pair_folders(tmp_path / "val", 3))
    dm.setup()
    assert len(dm.train_set) == 8 and len(dm.val_set) == 3
    assert [dm.val_set[i]["name"] for i in range(3)] == ["000.png", "001.png", "002.png"]


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


def test_bad_files_are_skipped_once_each_and_the_epoch_finishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sharp = image_folder(tmp_path / "sharp", 6)
    bad = corrupt_files(sharp)
    real = image_folder(tmp_path / "real", 2)
    corrupt_files(real)
    ds = UnpairedTrainSet(list_images(sharp), list_images(real), 32, synthetic_blur=identity)
    assert len(ds) == 10
    with caplog.at_level(logging.WARNING, logger="realblur_gan.data.datasets"):
        for _ in range(2):
            for i in range(len(ds)):
                item = ds[i]
                assert set(item) == TRAIN_KEYS and item["sharp"].shape == (3, 32, 32)
    warned = [r.getMessage() for r in caplog.records]
    for path in bad.values():
        mine = [m for m in warned if str(path) in m and "real" not in m]
        assert len(mine) == 1, f"{path.name}: {mine}"
        assert "\n" not in mine[0] and "skipped" in mine[0]


def test_skipping_is_deterministic(tmp_path: Path) -> None:
    sharp = image_folder(tmp_path / "sharp", 4)
    corrupt_files(sharp)
    real = list_images(image_folder(tmp_path / "real", 2))

    def epoch() -> list[torch.Tensor]:
        ds = UnpairedTrainSet(list_images(sharp), real, 32, synthetic_blur=identity)
        torch.manual_seed(0)
        return [ds[i]["sharp"] for i in range(len(ds))]

    fresh = epoch()
    assert all(torch.equal(a, b) for a, b in zip(fresh, epoch(), strict=True))


def test_stray_non_image_files_are_ignored(tmp_path: Path) -> None:
    sharp = image_folder(tmp_path / "sharp", 8)
    (sharp / "notes.txt").write_text("x")
    (sharp / "Thumbs.db").write_bytes(b"\0" * 10)
    (sharp / ".DS_Store").write_bytes(b"\0" * 10)
    (sharp / "._000.png").write_bytes(b"\0" * 10)  # macOS resource fork: hidden, skipped
    dm = datamodule(tmp_path, sharp_dir=sharp, val_fraction=0.25)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 8


@pytest.mark.parametrize("option", ["sharp_dir", "real_blur_dir", "pairs_dir", "val_dir"])
def test_empty_or_missing_folder_is_one_clear_line(tmp_path: Path, option: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    for folder in (empty, tmp_path / "missing"):
        kwargs = {option: folder}
        if option == "pairs_dir":
            kwargs.update(sharp_dir=None)
        dm = datamodule(tmp_path, **kwargs)
        with pytest.raises(ImageFolderError) as err:
            dm.setup()
        message = str(err.value)
        assert f"data.{option}" in message and str(folder) in message and "\n" not in message


def test_pair_without_partner_names_it(tmp_path: Path) -> None:
    pairs = pair_folders(tmp_path / "pairs", 3)
    (pairs / "sharp" / "001.png").unlink()
    with pytest.raises(ImageFolderError, match=r"blur/001\.png: has no partner"):
        match_pairs(pairs)


def test_validate_files_reports_every_bad_file_in_one_error(tmp_path: Path) -> None:
    sharp = image_folder(tmp_path / "sharp", 6)
    bad = corrupt_files(sharp)
    dm = datamodule(tmp_path, sharp_dir=sharp, validate_files=True)
    with pytest.raises(ValueError, match="bad training files") as err:
        dm.setup()
    message = str(err.value)
    # The header pass catches all but the corrupt JPEG, whose header is intact; that one is
    # skipped when it is read.
    for key in ("truncated", "zero", "text"):
        assert str(bad[key]) in message
    assert "validate_files=false" in message


def test_unreadable_headers_are_left_out_at_setup_with_skip(tmp_path: Path, caplog) -> None:
    sharp = image_folder(tmp_path / "sharp", 6)
    corrupt_files(sharp)
    dm = datamodule(tmp_path, sharp_dir=sharp, small_images="skip", val_fraction=0.2)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 7  # 6 good + the JPEG with a good header
    assert sum("zero.png" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("mode", ["pad", "skip"])
def test_images_smaller_than_the_crop(tmp_path: Path, mode: str) -> None:
    sharp = image_folder(tmp_path / "sharp", 6)
    image_folder(tmp_path / "sharp" / "tiny", 2, h=20, w=12, seed=30)
    image_folder(tmp_path / "sharp" / "one_px", 1, h=1, w=1, seed=40)
    dm = datamodule(tmp_path, sharp_dir=sharp, small_images=mode, val_fraction=0.12)
    dm.setup()
    total = len(dm.train_set) + len(dm.val_set)
    assert total == (9 if mode == "pad" else 6)
    for batch in batches(dm):
        assert batch["sharp"].shape == (2, 3, 32, 32)
    # The dataset on its own (no setup pass) skips them lazily, too.
    ds = UnpairedTrainSet(
        list_images(sharp), dm.train_set.real_blur, 32, identity, small_images=mode
    )
    for i in range(len(ds)):
        assert ds[i]["sharp"].shape == (3, 32, 32)


def test_only_small_images_with_skip_is_a_clear_error(tmp_path: Path) -> None:
    sharp = image_folder(tmp_path / "sharp", 4, h=20, w=20)
    dm = datamodule(tmp_path, sharp_dir=sharp, small_images="skip")
    with pytest.raises(ValueError, match="small_images=pad"):
        dm.setup()


def test_mismatched_pair_sizes(tmp_path: Path, caplog) -> None:
    pairs = pair_folders(tmp_path / "pairs", 4)
    odd = save(pairs / "blur" / "002.png", noise(44, 48, 3))
    ds = UnpairedTrainSet(
        None, list_images(image_folder(tmp_path / "real", 1)), 32, pairs=match_pairs(pairs)
    )
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(4)]
    assert all(torch.allclose(x["blur_syn"], 1 - x["sharp"], atol=1e-6) for x in items)
    assert any(str(odd) in r.getMessage() and "differs" in r.getMessage() for r in caplog.records)

    dm = datamodule(tmp_path, pairs_dir=pairs, validate_files=True)
    with pytest.raises(ValueError, match=r"002\.png: size \(44, 48\) differs"):
        dm.setup()
    dm = datamodule(tmp_path, val_dir=pairs)
    with pytest.raises(ValueError, match=r"bad validation pairs.*\n.*002\.png"):
        dm.setup()


def test_ab_image_with_odd_width_is_skipped(tmp_path: Path, caplog) -> None:
    ab = tmp_path / "ab"
    save(ab / "good.png", np.concatenate([noise(40, 40, 1), noise(40, 40, 2)], axis=1))
    save(ab / "odd.png", noise(40, 81, 3))
    ds = UnpairedTrainSet(
        None, list_images(image_folder(tmp_path / "real", 1)), 32, pairs=ab_pairs(ab)
    )
    with caplog.at_level(logging.WARNING):
        assert ds[1]["sharp"].shape == (3, 32, 32)
    assert any("odd width 81" in r.getMessage() for r in caplog.records)


def test_unicode_paths(tmp_path: Path, caplog) -> None:
    root = tmp_path / "données" / "照片"
    sharp = image_folder(root / "sharp ünï", 4)
    save(sharp / "café 图像.png", noise(40, 40, 5))
    real = image_folder(root / "réel", 2)
    broken = real / "ßroken 壊れた.png"
    broken.write_bytes(b"")
    dm = datamodule(tmp_path, sharp_dir=sharp, real_blur_dir=real, val_fraction=0.2)
    dm.setup()
    assert "café 图像.png" in {p.name for p in dm.train_set.sharp} | {
        dm.val_set[i]["name"] for i in range(len(dm.val_set))
    }
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            batches(dm)
    with pytest.raises(ImageReadError, match=r"ßroken 壊れた\.png: file is empty"):
        probe_image(broken)


def test_every_file_bad_raises_instead_of_looping(tmp_path: Path) -> None:
    bad = corrupt_files(tmp_path / "sharp")
    real = list_images(image_folder(tmp_path / "real", 1))
    ds = UnpairedTrainSet(sorted(bad.values()), real, 32, synthetic_blur=identity)
    with pytest.raises(DataError, match="all 4 training image files are unreadable"):
        ds[0]


def test_broken_validation_pair_mid_run_is_replaced(tmp_path: Path, caplog) -> None:
    pairs = match_pairs(pair_folders(tmp_path / "val", 3))
    data = pairs[1].sharp.read_bytes()
    pairs[1].sharp.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        item = PairedEvalSet(pairs, crop_size=32)[1]
    assert item["name"] == "002.png"
    assert any("metrics count it twice" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(60)
def test_two_workers_with_a_bad_file_finish_the_epoch(tmp_path: Path) -> None:
    sharp = image_folder(tmp_path / "sharp", 8)
    corrupt_files(sharp)
    dm = datamodule(tmp_path, sharp_dir=sharp, num_workers=2, timeout=30, val_fraction=0.1)
    dm.setup()
    loader = dm.train_dataloader()
    assert loader.timeout == 30
    n = 0
    for batch in loader:
        assert batch["sharp"].shape == (2, 3, 32, 32)
        n += 1
    assert n == len(dm.train_set) // 2
    assert len(next(iter(dm.val_dataloader()))["name"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pairs_dir": "x", "sharp_dir": "y"}, "exactly one of data.sharp_dir"),
        ({"sharp_dir": None}, "exactly one of data.sharp_dir"),
        ({"synthetic_blur": None}, "needs data.synthetic_blur"),
        ({"real_blur_dir": None}, "real_blur_dir is required"),
        ({"small_images": "crop"}, "small_images must be one of"),
        ({"pairs_format": "zip"}, "pairs_format must be one of"),
        ({"ab_blur_side": "top"}, "ab_blur_side must be one of"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"pair_folders": ["blur", "blur"]}, "pair_folders"),
    ],
)
def test_option_errors_are_raised_at_construction(tmp_path: Path, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        datamodule(tmp_path, **kwargs)


def test_too_few_items_for_a_batch(tmp_path: Path) -> None:
    dm = datamodule(tmp_path, sharp_dir=image_folder(tmp_path / "s", 3), batch_size=4)
    with pytest.raises(ValueError, match=r"fewer than data\.batch_size=4"):
        dm.setup()


def test_no_val_blur_without_val_dir(tmp_path: Path) -> None:
    dm = datamodule(tmp_path, val_blur=None)
    with pytest.raises(ValueError, match=r"set data\.val_blur"):
        dm.setup()


# --------------------------------------------------------------------------------------------------
# Configs, the demo and the shared data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["folders", "pairs", "ab", "gopro"])
def test_data_configs_instantiate(tmp_path: Path, name: str) -> None:
    pairs = pair_folders(tmp_path / "pairs", 6)
    ab = tmp_path / "ab"
    for p in match_pairs(pairs):
        concat_pair(ConcatJob(p.blur, p.sharp, ab / p.blur.name))
    gopro = tmp_path / "GOPRO_Large"
    for split in ("train", "test"):
        pair_folders(gopro / split / "GOPR0001", 6)
    overrides = {
        "folders": [f"data.sharp_dir={tmp_path / 'sharp'}"],
        "pairs": [f"data.pairs_dir={pairs}"],
        "ab": [f"data.pairs_dir={ab}"],
        "gopro": [],
    }[name]
    image_folder(tmp_path / "sharp", 8)
    real = image_folder(tmp_path / "real", 2)
    args = [
        f"data={name}",
        f"data.real_blur_dir={real}",
        "data.crop_size=32",
        "data.val_crop_size=32",
        "data.num_workers=0",
        "data.val_fraction=0.2",
        *overrides,
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=args)
    cfg.paths.data_dir = str(tmp_path)
    dm = instantiate(cfg.data)
    dm.setup()
    batch = batches(dm, 1)[0]
    assert set(batch) == TRAIN_KEYS and batch["sharp"].shape[-1] == 32
    if name != "folders":
        torch.testing.assert_close(batch["blur_syn"], 1 - batch["sharp"], atol=1e-6, rtol=0)


def test_demo_datamodule_still_works(tmp_path: Path) -> None:
    from realblur_gan.data.demo import DemoDataModule

    dm = DemoDataModule(
        tmp_path,
        n_sharp=6,
        n_real=2,
        n_val=2,
        image_size=48,
        crop_size=32,
        batch_size=2,
        num_workers=0,
        synthetic_blur=identity,
    )
    dm.prepare_data()
    dm.setup()
    assert set(batches(dm, 1)[0]) == TRAIN_KEYS
    assert set(next(iter(dm.val_dataloader()))) == EVAL_KEYS


@pytest.mark.skipif(not (SHARED / "natural").is_dir(), reason="no ../shared/data")
def test_shared_photos_load(tmp_path: Path) -> None:
    dm = BlurDataModule(
        SHARED / "natural",
        SHARED / "real_blur",
        synthetic_blur=identity,
        val_blur=identity,
        val_fraction=0.01,
        small_images="skip",
        num_workers=0,
    )
    dm.setup()
    assert len(dm.train_set) > 600 and len(dm.train_set.real_blur) > 50
    batch = batches(dm, 1)[0]
    assert batch["blur_real"].shape == (4, 3, 256, 256)
