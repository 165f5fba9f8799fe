"""Real blur from high-fps frames: disjoint windows, GoPro averages, pairing, cache, bad input.

Everything runs on a tiny generated clip (40 frames of 48x64 px of a texture panning across
the picture); nothing here reads ../shared.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from realblur_gan.camera import SimpleBlur, gopro_blur
from realblur_gan.data import frames as frames_module
from realblur_gan.data.frames import (
    ROLES,
    FramesDataModule,
    find_sequences,
    min_sequence_length,
    split_frames,
)
from realblur_gan.data.io import ImageFolderError, list_images, read_image
from realblur_gan.training.config import CONFIG_DIR

N_FRAMES, H, W = 40, 48, 64
FIRST = 500  # frame numbers as a video export would name them; names, not indices, are kept
TRAIN_KEYS = {"sharp", "blur_syn", "blur_real"}
EVAL_KEYS = {"blur", "sharp", "name"}
SMALL = {"n_frames": (3, 5), "gap": 2}


def write_clip(folder: Path, n: int = N_FRAMES, h: int = H, w: int = W, seed: int = 0) -> Path:
    """``n`` frames of a random texture moving 2 px right and 1 px down per frame."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (h + n, w + 2 * n, 3), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(texture[i : i + h, 2 * i : 2 * i + w]).save(folder / f"{FIRST + i:06d}.png")
    return folder


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one sequence folder, like ../shared/data/gopro_frames."""
    root = tmp_path_factory.mktemp("frames")
    write_clip(root / "clip")
    return root


def frames_dm(frames_dir: Path, cache: Path, **kwargs) -> FramesDataModule:
    options = {
        "cache_dir": cache,
        **SMALL,
        "downscale": 1,
        "crop_size": 32,
        "val_crop_size": 32,
        "batch_size": 2,
        "val_batch_size": 2,
        "num_workers": 0,
        "seed": 0,
        "synthetic_blur": SimpleBlur(kernel_size=(3, 5)),
        **kwargs,
    }
    return FramesDataModule(frames_dir, **options)


def first_batches(dm: FramesDataModule, n: int = 2) -> list[dict]:
    return list(itertools.islice(dm.train_dataloader(), n))


def frame_tensors(folder: Path) -> torch.Tensor:
    return torch.stack([read_image(p, 3)[0] for p in list_images(folder)])


def frame_index(name: str) -> tuple[int, int]:
    """``(start, n)`` of an average from its file name ``<middle frame>_n<n>.png``."""
    stem, n = Path(name).stem.rsplit("_n", 1)
    middle, n = int(stem) - FIRST, int(n)
    return middle - n // 2, n


# --------------------------------------------------------------------------------------------------
# The split (pure)
# --------------------------------------------------------------------------------------------------


SPLITS = [
    {},
    {"gap": 0, "n_frames": (2, 2)},
    {"gap": 7, "order": ("val", "sharp", "real_blur"), "paired": True},
    {"train_stride": 3, "val_stride": 2, "paired": True, "seed": 5},
    {"fractions": {"sharp": 1, "real_blur": 1, "val": 2}, "n_frames": (1, 9)},
]


@pytest.mark.parametrize("options", SPLITS)
def test_windows_are_disjoint_gapped_and_hold_their_averages(options: dict) -> None:
    lengths = {"a": 60, "b": 200, "c/d": 97}
    opts = {"n_frames": (3, 6), "gap": 4, **options}
    split = split_frames(lengths, **opts)
    low, high = opts["n_frames"]
    gap = opts["gap"]
    roles = {role: split.frames_of(role) for role in ROLES}
    for r1, r2 in itertools.combinations(ROLES, 2):
        assert not roles[r1] & roles[r2], f"{r1} and {r2} share frames"
    for seq, length in lengths.items():
        windows = sorted(
            (w for ws in split.windows.values() for w in ws if w.sequence == seq),
            key=lambda w: w.start,
        )
        assert len(windows) == 3 and windows[0].start >= 0 and windows[-1].stop <= length
        for before, after in itertools.pairwise(windows):
            assert after.start - before.stop >= gap, f"{seq}: gap not respected"
    inside = {
        role: {(w.sequence, i) for w in split.windows[role] for i in range(w.start, w.stop)}
        for role in ROLES
    }
    assert set(split.sharp) == inside["sharp"]
    for role, items in (
        ("sharp", split.paired),
        ("real_blur", split.real_blur),
        ("val", split.val),
    ):
        for a in items:
            assert low <= a.n <= high
            assert {(a.sequence, i) for i in range(a.start, a.stop)} <= inside[role]
    assert bool(split.paired) == bool(opts.get("paired"))
    if opts.get("val_stride") is None:  # end to end: every frame in at most one validation pair
        frames = [(a.sequence, i) for a in split.val for i in range(a.start, a.stop)]
        assert len(frames) == len(set(frames))
    assert split_frames(lengths, **opts).to_json() == split.to_json()  # deterministic


def test_n_is_drawn_over_the_whole_range_and_follows_the_seed() -> None:
    lengths = {"a": 400}
    split = split_frames(lengths, n_frames=(7, 13))
    assert {a.n for a in split.real_blur} == set(range(7, 14))
    other = split_frames(lengths, n_frames=(7, 13), seed=1)
    assert split.windows == other.windows and split.real_blur != other.real_blur


def test_sequences_split_gives_each_role_whole_sequences() -> None:
    lengths = {f"s{i}": 30 + i for i in range(7)}
    split = split_frames(lengths, n_frames=(3, 5), split_by="sequences", seed=2)
    owner = {}
    for role, windows in split.windows.items():
        for w in windows:
            assert (w.start, w.stop) == (0, lengths[w.sequence])
            assert owner.setdefault(w.sequence, role) == role
    assert set(owner) == set(lengths) and set(owner.values()) == set(ROLES)
    with pytest.raises(ValueError, match=r"at least 3 sequences.*split_by=frames"):
        split_frames({"a": 100, "b": 100}, split_by="sequences")


def test_min_sequence_length_is_exact() -> None:
    fractions = {"sharp": 0.3, "real_blur": 0.35, "val": 0.35}
    for paired in (False, True):
        need = min_sequence_length(fractions, ROLES, (7, 13), 10, paired)
        split_frames({"a": need}, paired=paired)
        with pytest.raises(ValueError, match=f"longest sequence has {need - 1}.*need {need}"):
            split_frames({"a": need - 1}, paired=paired)


def test_short_sequences_are_left_out_when_others_fit(caplog: pytest.LogCaptureFixture) -> None:
    split = split_frames({"long": 200, "short": 20})
    assert {w.sequence for ws in split.windows.values() for w in ws} == {"long"}
    assert "short: 20 frames" in caplog.text


# --------------------------------------------------------------------------------------------------
# Rendered images
# --------------------------------------------------------------------------------------------------


def test_averages_are_linear_light_means_and_pairs_are_aligned(
    clip_root: Path, tmp_path: Path
) -> None:
    dm = frames_dm(clip_root, tmp_path, train_pairs="real")
    dm.setup()
    folder = dm.cache_folder
    frames = frame_tensors(clip_root / "clip")
    checked = 0
    for part in ("real_blur", "paired/blur", "val/blur"):
        for path in list_images(folder / part):
            start, n = frame_index(path.name)
            blur, sharp = gopro_blur(frames[start : start + n])
            # 8-bit files: the average is exact up to rounding to the nearest 1/255.
            torch.testing.assert_close(read_image(path)[0], blur, atol=0.5 / 255 + 1e-6, rtol=0)
            if part != "real_blur":
                twin = Path(str(path).replace("/blur/", "/sharp/"))
                assert torch.equal(read_image(twin)[0], sharp), f"{twin}: not the middle frame"
                assert torch.equal(sharp, frames[start + n // 2])
            checked += 1
    split = dm.split
    assert checked == len(split.real_blur) + len(split.paired) + len(split.val)
    # The validation set is these pairs, cropped; its names say which frames made each one.
    names = sorted(dm.val_set[i]["name"] for i in range(len(dm.val_set)))
    expected = sorted(f"clip/{FIRST + a.middle:06d}_n{a.n}.png" for a in split.val)
    assert names == expected
    # Sharp / real / val files come from the right windows only.
    val_frames = {i for a in split.val for i in range(a.start, a.stop)}
    train_frames = {i for a in split.paired + split.real_blur for i in range(a.start, a.stop)}
    assert not val_frames & train_frames


def test_downscale_shrinks_frames_before_averaging(clip_root: Path, tmp_path: Path) -> None:
    dm = frames_dm(clip_root, tmp_path, downscale=2, crop_size=16, val_crop_size=16)
    dm.setup()
    frames = frame_tensors(clip_root / "clip")
    small = torch.nn.functional.avg_pool2d(frames, 2)
    sharp_files = list_images(dm.cache_folder / "sharp")
    assert len(sharp_files) == len(dm.split.sharp)
    first = read_image(sharp_files[0])[0]
    assert first.shape == (3, H // 2, W // 2)
    torch.testing.assert_close(first, small[dm.split.sharp[0][1]], atol=0.5 / 255 + 1e-6, rtol=0)
    val = list_images(dm.cache_folder / "val" / "blur")[0]
    start, n = frame_index(val.name)
    torch.testing.assert_close(
        read_image(val)[0], gopro_blur(small[start : start + n])[0], atol=0.5 / 255 + 1e-6, rtol=0
    )


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("train_pairs", ["synthetic", "real"])
def test_batches_keep_the_vocabulary(clip_root: Path, tmp_path: Path, train_pairs: str) -> None:
    dm = frames_dm(clip_root, tmp_path, train_pairs=train_pairs)
    dm.setup()
    for batch in first_batches(dm):
        assert set(batch) == TRAIN_KEYS
        for x in batch.values():
            assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
            assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert not torch.equal(batch["blur_syn"], batch["sharp"])
    val = next(iter(dm.val_dataloader()))
    assert set(val) == EVAL_KEYS and val["blur"].shape == val["sharp"].shape == (2, 3, 32, 32)
    if train_pairs == "real":
        # Oracle pairs: blur_syn is the real average around the sharp frame, from the sharp window.
        assert len(dm.train_set) == len(dm.split.paired)
        sharp_window = dm.split.windows["sharp"][0]
        for pair in dm.train_set.pairs:
            start, n = frame_index(pair.name.split("/")[-1])
            assert sharp_window.start <= start and start + n <= sharp_window.stop
    else:
        assert len(dm.train_set) == len(dm.split.sharp)
    assert len(dm.train_set.real_blur) == len(dm.split.real_blur)


def test_a_seed_reproduces_split_cache_and_batches(
    clip_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = frames_dm(clip_root, tmp_path, seed=3)
    first.setup()
    batches = first_batches(first)
    stamps = {p: p.stat().st_mtime_ns for p in list_images(first.cache_folder)}

    def no_render(*args, **kwargs):
        raise AssertionError("the cached split was rendered again")

    monkeypatch.setattr(frames_module, "render_split", no_render)
    again = frames_dm(clip_root, tmp_path, seed=3)
    again.setup()
    assert again.cache_folder == first.cache_folder
    assert {p: p.stat().st_mtime_ns for p in list_images(again.cache_folder)} == stamps
    for b1, b2 in zip(batches, first_batches(again), strict=True):
        assert all(torch.equal(b1[k], b2[k]) for k in TRAIN_KEYS)

    monkeypatch.undo()
    other = frames_dm(clip_root, tmp_path, seed=4)
    other.setup()
    assert other.split.real_blur != first.split.real_blur
    assert other.cache_folder != first.cache_folder


def test_an_interrupted_render_resumes(
    clip_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = frames_module.write_image
    calls = {"n": 0}

    def dying_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real_write(*args, **kwargs)

    monkeypatch.setattr(frames_module, "write_image", dying_write)
    with pytest.raises(KeyboardInterrupt):
        frames_dm(clip_root, tmp_path).setup()
    assert not list(tmp_path.glob("*/DONE"))
    monkeypatch.undo()
    dm = frames_dm(clip_root, tmp_path)
    dm.setup()
    assert (dm.cache_folder / "DONE").exists() and not list(tmp_path.glob("*.partial"))
    assert len(list_images(dm.cache_folder)) == (
        len(dm.split.sharp) + len(dm.split.real_blur) + 2 * len(dm.split.val)
    )


# --------------------------------------------------------------------------------------------------
# Layouts and bad input
# --------------------------------------------------------------------------------------------------


def test_one_folder_of_frames_and_a_folder_of_sequences(tmp_path: Path) -> None:
    flat = write_clip(tmp_path / "flat", n=30)
    assert list(find_sequences(flat)) == [""]
    many = tmp_path / "many"
    for seq in ("GOPR0001_00_00", "GOPR0002_00_00"):
        write_clip(many / seq, n=30)
    sequences = find_sequences(many)
    assert list(sequences) == ["GOPR0001_00_00", "GOPR0002_00_00"]
    dm = frames_dm(many, tmp_path / "cache")
    dm.setup()
    assert {w.sequence for w in dm.split.windows["val"]} == set(sequences)
    assert {dm.val_set[i]["name"].split("/")[0] for i in range(len(dm.val_set))} == set(sequences)
    flat_dm = frames_dm(flat, tmp_path / "cache")
    flat_dm.setup()
    assert all("/" not in flat_dm.val_set[i]["name"] for i in range(len(flat_dm.val_set)))


def test_too_few_frames_is_one_line_naming_the_folder_and_the_fix(tmp_path: Path) -> None:
    short = write_clip(tmp_path / "short", n=12)
    with pytest.raises(ValueError) as err:
        frames_dm(short, tmp_path / "cache").setup()
    message = str(err.value)
    assert "\n" not in message and str(short) in message
    assert "longest sequence has 12" in message and "data.gap" in message


def test_empty_missing_and_paired_release_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no frames here")
    for folder in (empty, tmp_path / "missing"):
        with pytest.raises(ImageFolderError, match=re.escape(f"data.frames_dir: {folder}")) as err:
            frames_dm(folder, tmp_path / "cache").setup()
        assert "\n" not in str(err.value)
    paired = tmp_path / "GOPRO_Large" / "train"
    for sub in ("blur", "sharp"):
        write_clip(paired / "GOPR0372_07_00" / sub, n=3)
    with pytest.raises(ImageFolderError, match=r"paired release.*data=gopro"):
        frames_dm(paired, tmp_path / "cache").setup()


def test_frames_of_different_sizes_are_named(tmp_path: Path) -> None:
    folder = write_clip(tmp_path / "clip", n=N_FRAMES)
    odd = folder / f"{FIRST + 3:06d}.png"
    Image.fromarray(np.zeros((H, W + 2, 3), np.uint8)).save(odd)
    with pytest.raises(ValueError, match=re.escape(f"{odd}: size")):
        frames_dm(folder, tmp_path / "cache").setup()


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"fractions": {"sharp": 1, "val": 1}}, "data.fractions"),
        ({"n_frames": (5, 3)}, "data.n_frames"),
        ({"gap": -1}, "data.gap"),
        ({"order": ("sharp", "sharp", "val")}, "data.order"),
        ({"train_pairs": "oracle"}, "data.train_pairs"),
        ({"downscale": 0}, "data.downscale"),
        ({"split_by": "scenes"}, "data.split_by"),
    ],
)
def test_bad_options_fail_at_instantiation(tmp_path: Path, option: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frames_dm(tmp_path / "not-read-yet", tmp_path / "cache", **option)


# --------------------------------------------------------------------------------------------------
# The config
# --------------------------------------------------------------------------------------------------


# data=gopro_frames shrunk to the tiny clip.
TINY_FRAMES = [
    "data=gopro_frames",
    "data.n_frames=[3,5]",
    "data.gap=2",
    "data.downscale=1",
    "data.crop_size=32",
    "data.val_crop_size=32",
    "data.num_workers=0",
    "data.synthetic_blur.kernel_size=[3,5]",
]


@pytest.mark.parametrize("channels", [1, 3])
def test_config_one_override_or_env(
    clip_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int
) -> None:
    args = [*TINY_FRAMES, f"model.image_channels={channels}"]
    monkeypatch.setenv("REALBLUR_GAN_FRAMES", str(clip_root))
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        from_env = compose("train", overrides=args)
        cfg = compose("train", overrides=[*args, f"data.frames_dir={clip_root}"])
    # As in a run: paths.data_dir needs Hydra's runtime, which compose() does not set.
    from_env.paths.data_dir = cfg.paths.data_dir = str(tmp_path)
    assert from_env.data.frames_dir == str(clip_root)
    monkeypatch.delenv("REALBLUR_GAN_FRAMES")
    assert from_env.data.frames_dir == str(tmp_path / "frames")
    assert cfg.data.frames_dir == str(clip_root)
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.cache_folder.parent == tmp_path / "frames_cache"
    batch = first_batches(dm, 1)[0]
    assert set(batch) == TRAIN_KEYS
    val = next(iter(dm.val_dataloader()))
    assert set(val) == EVAL_KEYS
    # The batches follow the nets' channels (before, gray nets got RGB batches from here).
    assert {batch[key].shape[1] for key in TRAIN_KEYS} == {channels}
    assert val["blur"].shape[1] == val["sharp"].shape[1] == channels
