"""The data_tools CLIs on tiny generated folders: outputs, resuming, errors and exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data_tools import ab, frames, synthesize, verify
from realblur_gan.data.io import list_images, read_image, write_image


def make_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 48)) -> None:
    gen = torch.Generator().manual_seed(len(names))
    for name in names:
        write_image(folder / name, torch.rand(3, *size, generator=gen))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.*")}


@pytest.mark.parametrize("module", [synthesize, frames, ab, verify])
def test_help(module: object, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        module.main(["--help"])
    assert caught.value.code == 0
    assert "--workers" in capsys.readouterr().out


def test_synthesize_writes_pairs_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "sharp", tmp_path / "out"
    make_images(src, ["a.png", "sub/b.jpg", "sub/c.bmp"])
    make_images(src, ["tiny.png"], size=(12, 12))
    assert synthesize.main([str(src), str(out), "--crop", "32", "--kernel-size", "5", "9"]) == 0
    assert "3 written" in capsys.readouterr().out
    for name in ("a", "sub/b", "sub/c"):
        blur, _ = read_image(out / "blur" / f"{name}.png")
        sharp, _ = read_image(out / "sharp" / f"{name}.png")
        assert blur.shape == sharp.shape == (3, 32, 32)
        kernel = np.load(out / "kernels" / f"{name}.npy")
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and kernel.shape[0] <= 9
    first = snapshot(out)
    (out / "blur" / "a.png").unlink()  # an interrupted run: only this pair is redone
    assert synthesize.main([str(src), str(out), "--crop", "32", "--kernel-size", "5", "9"]) == 0
    summary = capsys.readouterr().out
    assert "1 written, 2 already done, 1 ignored" in summary
    assert snapshot(out) == first  # same seed, same name: identical files


def test_synthesize_simple_png_kernels_and_workers_agree(tmp_path: Path) -> None:
    src = tmp_path / "sharp"
    make_images(src, ["a.png", "b.png", "c.png"])
    common = ["--blur", "simple", "--kernel-format", "png", "--resize", "24", "--seed", "7"]
    assert synthesize.main([str(src), str(tmp_path / "one"), *common]) == 0
    assert synthesize.main([str(src), str(tmp_path / "two"), *common, "--workers", "2"]) == 0
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")
    assert read_image(tmp_path / "one" / "sharp" / "a.png")[0].shape[1] == 24
    assert (tmp_path / "one" / "kernels" / "a.png").exists()


def test_synthesize_camera_pipeline_and_its_switches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--blur camera writes what CameraPipelineBlur makes for the image's seed; switches act."""
    from realblur_gan.camera import CameraPipelineBlur

    src = tmp_path / "sharp"
    make_images(src, ["a.png"], size=(32, 32))
    common = [str(src), "--blur", "camera", "--kernel-size", "5", "9", "--seed", "3"]
    runs = {
        "full": [],
        "jpeg": ["--jpeg-quality", "70", "90"],
        "daylight": ["--no-saturation", "--no-white-balance", "--no-mosaic", "--no-noise"],
        "linear": ["--tone-curve", "linear"],
        "roll": ["--rotation", "0.5", "0.5"],
        "frames": ["--frames", "7", "9", "--shutter", "0.1", "0.2"],
        "span": ["--span", "0.95", "1.0", "--kernel-size", "9", "9"],
    }
    blurs = {}
    for run, flags in runs.items():
        assert synthesize.main([common[0], str(tmp_path / run), *common[1:], *flags]) == 0
        blurs[run] = read_image(tmp_path / run / "blur" / "a.png")[0]
    sharp = read_image(tmp_path / "full" / "sharp" / "a.png")[0]
    gen = torch.Generator().manual_seed(synthesize.seed_for(3, "a"))
    expected = CameraPipelineBlur(kernel_size=(5, 9))(sharp, gen)
    torch.testing.assert_close(blurs["full"], expected, atol=1 / 255, rtol=0)  # 8-bit PNG
    for run in ("jpeg", "daylight", "linear", "roll", "frames", "span"):
        assert (blurs[run] - blurs["full"]).abs().max() > 2 / 255, run
    # Frame averages: the same shake's light, spread another way (separate short strokes).
    framed = np.load(tmp_path / "frames" / "kernels" / "a.npy")
    full = np.load(tmp_path / "full" / "kernels" / "a.npy")
    assert framed.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.abs(framed - full).sum() > 0.1
    # With the roll the blur varies across the photo; kernels/ holds its average.
    kernel = np.load(tmp_path / "roll" / "kernels" / "a.npy")
    assert kernel.ndim == 2 and kernel.sum() == pytest.approx(1.0, abs=1e-5)
    # A camera switch with another blur is refused on one line, before any work.
    capsys.readouterr()
    assert synthesize.main([str(src), str(tmp_path / "x"), "--no-mosaic"]) == 2
    assert "--no-mosaic is a camera pipeline switch" in capsys.readouterr().err
    simple_frames = ["--blur", "simple", "--frames", "7", "13"]
    assert synthesize.main([str(src), str(tmp_path / "x"), *simple_frames]) == 2
    assert "--frames shapes a camera shake" in capsys.readouterr().err
    # Bad settings are refused on one line before any photo is made.
    bad_shutter = [*common, "--frames", "7", "13", "--shutter", "0", "0.5"]
    assert synthesize.main([common[0], str(tmp_path / "x"), *bad_shutter[1:]]) == 2
    err = capsys.readouterr().err
    assert "shutter must lie in (0, 1]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_synthesize_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synthesize.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    src = tmp_path / "sharp"
    make_images(src, ["a.png"])
    (src / "broken.png").write_bytes(b"not an image")
    assert synthesize.main([str(src), str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "1 written" in captured.out


def test_frames_makes_gopro_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "frames"
    for seq in ("s1", "s2"):
        for i in range(7):
            write_image(root / seq / f"{i:03d}.png", torch.full((3, 8, 10), i / 10))
    out = tmp_path / "out"
    assert frames.main([str(root), str(out), "--n-frames", "3"]) == 0
    assert "4 written" in capsys.readouterr().out  # 2 windows of 3 in each 7-frame sequence
    blur, _ = read_image(out / "blur" / "s1" / "001.png")
    sharp, _ = read_image(out / "sharp" / "s1" / "001.png")
    expected = ((torch.tensor([0.0, 0.1, 0.2]) ** 2.2).mean() ** (1 / 2.2)).item()
    assert blur.mean().item() == pytest.approx(expected, abs=1 / 255)
    assert sharp.mean().item() == pytest.approx(0.1, abs=1 / 255)
    assert frames.main([str(root), str(out), "--n-frames", "3", "--stride", "2"]) == 0
    assert "4 written, 2 already done" in capsys.readouterr().out  # middles 3, 5 new; 1 done


def test_frames_downscale_shrinks_each_frame_before_averaging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = tmp_path / "frames", tmp_path / "out"
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand(3, 3, 9, 13, generator=gen)  # odd sizes: the last row and column drop
    for i, frame in enumerate(clip):
        write_image(root / "s" / f"{i:03d}.png", frame, bit_depth=16)
    argv = [str(root), str(out), "--n-frames", "3", "--downscale", "2"]
    assert frames.main(argv) == 0
    small = torch.nn.functional.avg_pool2d(read_image_stack(root / "s"), 2)
    blur, _ = read_image(out / "blur" / "s" / "001.png")
    sharp, _ = read_image(out / "sharp" / "s" / "001.png")
    assert blur.shape == sharp.shape == (3, 4, 6)
    torch.testing.assert_close(sharp, small[1], atol=1 / 65535, rtol=0)
    linear = (small**2.2).mean(0) ** (1 / 2.2)
    torch.testing.assert_close(blur, linear, atol=1 / 65535, rtol=0)
    capsys.readouterr()
    assert frames.main([*argv[:2], "--downscale", "0"]) == 2
    assert "--downscale 0" in capsys.readouterr().err


def read_image_stack(folder: Path) -> torch.Tensor:
    return torch.stack([read_image(p)[0] for p in list_images(folder)])


def test_ab_concat_split_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_dir, b_dir = tmp_path / "A", tmp_path / "B"
    make_images(a_dir, ["x.png", "y.png", "only_a.png"], size=(6, 8))
    make_images(b_dir, ["x.png", "y.png"], size=(6, 8))
    make_images(a_dir, ["z.png"], size=(6, 8))
    make_images(b_dir, ["z.png"], size=(6, 9))
    assert ab.main(["concat", str(a_dir), str(b_dir), str(tmp_path / "AB")]) == 1  # z mismatch
    captured = capsys.readouterr()
    assert "z.png" in captured.err and "2 written" in captured.out
    assert read_image(tmp_path / "AB" / "x.png")[0].shape == (3, 6, 16)
    assert ab.main(["split", str(tmp_path / "AB"), str(tmp_path / "A2"), str(tmp_path / "B2")]) == 0
    for side, src in (("A2", a_dir), ("B2", b_dir)):
        assert torch.equal(read_image(tmp_path / side / "x.png")[0], read_image(src / "x.png")[0])
    assert ab.main(["split", str(tmp_path / "AB"), str(tmp_path / "A2"), str(tmp_path / "B2")]) == 0
    assert "0 written, 2 already done" in capsys.readouterr().out


def test_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    make_images(data / "blur", ["a.png", "b.png"])
    make_images(data / "sharp", ["a.png", "b.png"], size=(40, 48))
    assert verify.main([str(data), "--min-size", "32"]) == 0
    assert "verify OK: 4 images, 2 pairs" in capsys.readouterr().out

    # Exact duplicate pixels: a warning, an error only with --strict.
    write_image(data / "blur" / "dup.png", read_image(data / "blur" / "a.png")[0])
    write_image(data / "sharp" / "dup.png", read_image(data / "sharp" / "b.png")[0])
    assert verify.main([str(data), "--min-size", "32"]) == 0
    assert "duplicate" in capsys.readouterr().out
    assert verify.main([str(data), "--min-size", "32", "--strict"]) == 1
    capsys.readouterr()

    (data / "blur" / "broken.png").write_bytes(b"")
    make_images(data / "sharp", ["broken.png"], size=(8, 8))
    make_images(data / "sharp", ["lonely.png"])
    assert verify.main([str(data), "--min-size", "32", "--workers", "2"]) == 1
    report = capsys.readouterr().out
    for expected in ("unreadable", "broken.png", "too small", "unpaired", "lonely.png"):
        assert expected in report


def test_verify_two_folders_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_images(tmp_path / "a", ["x.png"], size=(40, 40))
    make_images(tmp_path / "b", ["x.jpg"], size=(40, 44))
    assert verify.main([str(tmp_path / "a"), str(tmp_path / "b"), "--min-size", "8"]) == 1
    assert "size mismatch" in capsys.readouterr().out
    assert verify.main([str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert list_images(tmp_path / "a")  # verify never modifies the data
