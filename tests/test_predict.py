"""realblur-deblur: the packaged model or --checkpoint, file walking, image modes, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_NET, save_net_checkpoint
from PIL import Image

from realblur_gan.data.io import read_image, write_image
from realblur_gan.export import export_safetensors
from realblur_gan.nets import UNet
from realblur_gan.predict import InputError, main, resolve_inputs


@pytest.fixture
def identity_ckpt(tmp_path: Path) -> Path:
    """A U-Net whose residual is zero: its output equals its input, exposing any IO loss."""
    return save_net_checkpoint(
        tmp_path / "identity.ckpt", UNet(3, 3, width=4, depth=2).zero_residual_()
    )


def test_cli_gray_16bit_and_rgba_round_trip(tmp_path: Path, identity_ckpt: Path) -> None:
    src = tmp_path / "in"
    gen = torch.Generator().manual_seed(0)
    gray16 = torch.randint(0, 65536, (1, 13, 17), generator=gen).float() / 65535
    write_image(src / "gray16.png", gray16, bit_depth=16)
    gray8 = torch.randint(0, 256, (1, 9, 11), generator=gen).float() / 255
    write_image(src / "sub" / "gray8.png", gray8)
    rgba = torch.rand(4, 10, 14, generator=gen)
    write_image(src / "rgba.png", rgba)

    assert (
        main(
            [
                str(identity_ckpt),
                str(src),
                "--out",
                str(tmp_path / "out"),
                "--tile",
                "8",
                "--overlap",
                "4",
            ]
        )
        == 0
    )

    out16, info16 = read_image(tmp_path / "out" / "gray16.png")
    assert info16.mode == "L" and info16.bit_depth == 16 and out16.shape == (1, 13, 17)
    assert torch.allclose(out16, gray16, atol=1.5 / 65535)
    out8, info8 = read_image(tmp_path / "out" / "sub" / "gray8.png")
    assert info8.mode == "L" and info8.bit_depth == 8
    assert torch.allclose(out8, gray8, atol=1 / 255 + 1e-6)
    with Image.open(tmp_path / "out" / "rgba.png") as img:
        assert img.mode == "RGBA" and img.size == (14, 10)
        alpha = np.asarray(img)[..., 3]
    assert np.array_equal(alpha, (rgba[3] * 255).round().byte().numpy())


def test_cli_skips_existing_and_bad_files(
    tmp_path: Path, identity_ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for name in ("a", "b"):
        write_image(src / f"{name}.png", torch.rand(3, 12, 12))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    args = [str(identity_ckpt), str(src), "--out", str(out)]

    assert main(args) == 1  # the broken file fails, the others are written
    captured = capsys.readouterr()
    assert "broken.png" in captured.err
    assert "2 written, 0 already done, 1 failed" in captured.out
    assert (out / "a.png").is_file() and (out / "b.png").is_file()

    (src / "broken.png").unlink()
    assert main(args) == 0
    assert "0 written, 2 already done" in capsys.readouterr().out
    assert main([*args, "--overwrite", "--ext", "tif"]) == 0
    assert "2 written" in capsys.readouterr().out
    assert (out / "a.tif").is_file()


def test_cli_glob_and_error_exit(
    tmp_path: Path, identity_ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("x1.png", "x2.png", "y.png"):
        write_image(tmp_path / "in" / name, torch.rand(3, 8, 8))
    assert (
        main([str(identity_ckpt), str(tmp_path / "in" / "x*.png"), "--out", str(tmp_path / "o")])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x1.png", "x2.png"]
    capsys.readouterr()
    assert main([str(identity_ckpt), str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nothing" in err and len(err.strip().splitlines()) == 1


def test_resolve_inputs_keeps_subfolders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_image(tmp_path / "d" / "s" / "a.png", torch.rand(3, 4, 4))
    write_image(tmp_path / "b.jpg", torch.rand(3, 4, 4))
    pairs = resolve_inputs([tmp_path / "d", tmp_path / "b.jpg"])
    assert [rel.as_posix() for _, rel in pairs] == ["s/a.png", "b.jpg"]
    with pytest.raises(InputError, match="matches no image"):
        resolve_inputs([str(tmp_path / "*.tif")])
    write_image(tmp_path / "e" / "s" / "a.png", torch.rand(3, 4, 4))
    with caplog.at_level(logging.WARNING):
        assert len(resolve_inputs([tmp_path / "d", tmp_path / "e"])) == 1
    assert "same output name" in caplog.text


# --------------------------------------------------------------------------------------------------
# Which model: the packaged one, --checkpoint, or the checkpoint first (the older form)
# --------------------------------------------------------------------------------------------------


def test_no_checkpoint_runs_the_packaged_model(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = torch.rand(3, 12, 10, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "photo.png", image)
    assert main([str(tmp_path / "photo.png"), "--out", str(tmp_path / "out")]) == 0
    assert "1 written" in capsys.readouterr().out
    restored, _ = read_image(tmp_path / "out" / "photo.png")
    assert torch.allclose(restored, image, atol=1 / 255 + 1e-6)  # the identity weights ran


def test_no_packaged_model_is_one_line(
    tmp_path: Path, no_packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "photo.png", torch.rand(3, 8, 8))
    assert main([str(tmp_path / "photo.png"), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no packaged model is installed") and "--checkpoint" in line
    assert not list((tmp_path / "out").glob("*.png"))


def test_packaged_model_is_only_a_dbgan(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "photo.png", torch.rand(3, 8, 8))
    argv = [str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"), "--net", "bgan_g"]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--net bgan_g" in line and "--checkpoint" in line


def test_checkpoint_option_and_the_older_positional_form(
    tmp_path: Path,
    identity_ckpt: Path,
    no_packaged_weights: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_image(tmp_path / "in" / "a.png", torch.rand(3, 8, 8))
    net = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    exported, _ = export_safetensors(net, TINY_NET, tmp_path / "exported", "dbgan_g")
    out = ["--out", str(tmp_path / "out"), "--overwrite"]
    images = str(tmp_path / "in")
    for model in (identity_ckpt, exported, exported.parent):
        assert main(["--checkpoint", str(model), images, *out]) == 0
        assert main([str(model), images, *out]) == 0  # CHECKPOINT INPUT..., as before
    capsys.readouterr()
    assert main(["--checkpoint", str(identity_ckpt), str(identity_ckpt), images, *out]) == 2
    assert "pass the checkpoint once" in capsys.readouterr().err
    assert main([str(identity_ckpt), *out]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "no image to deblur" in line


def test_self_ensemble_option_runs_the_eight_passes(
    tmp_path: Path, identity_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import realblur_gan.inference.tiling as inference

    calls = []
    make_runner = inference.forward_runner

    def counting_runner(*args: object, **kwargs: object):
        run = make_runner(*args, **kwargs)
        return lambda x: calls.append(x.shape) or run(x)

    monkeypatch.setattr(inference, "forward_runner", counting_runner)
    image = torch.rand(3, 12, 20, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "photo.png", image)
    argv = ["--checkpoint", str(identity_ckpt), str(tmp_path / "photo.png")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--self-ensemble"]) == 0
    restored, _ = read_image(tmp_path / "out" / "photo.png")
    assert torch.allclose(restored, image, atol=1 / 255 + 1e-6)
    assert len(calls) == 8 and {tuple(s[-2:]) for s in calls} == {(12, 20), (20, 12)}


# --------------------------------------------------------------------------------------------------
# Two writers, multi-frame inputs (issue 25)
# --------------------------------------------------------------------------------------------------


def test_a_second_deblur_into_the_same_out_is_refused(
    tmp_path: Path, identity_ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the two runs shared a temporary file name and one stopped with a misleading
    "check free space, permissions". Now the second is refused, naming the first."""
    from realblur_gan.ownership import claim_folder

    write_image(tmp_path / "in" / "a.png", torch.rand(3, 16, 16))
    out = tmp_path / "out"
    first = claim_folder(out, "--out", "pass another --out")  # the other realblur-deblur
    try:
        assert main([str(identity_ckpt), str(tmp_path / "in"), "--out", str(out)]) == 2
    finally:
        first.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "free space" not in err[0]
    assert err[0].startswith(f"error: --out {out} is in use by PID ")
    assert err[0].endswith("wait for it to finish, or pass another --out")
    assert not (out / "a.png").exists()
    # Once the first is done, the same command works.
    assert main([str(identity_ckpt), str(tmp_path / "in"), "--out", str(out)]) == 0


def test_writers_of_one_file_never_share_a_temporary_file(tmp_path: Path) -> None:
    """Eight threads write the same target 20 times each: with one temporary name per target,
    one writer's rename or clean-up took the other's file away (FileNotFoundError)."""
    import threading

    target = tmp_path / "same.png"
    errors: list[BaseException] = []

    def write_many(seed: int) -> None:
        image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))
        for _ in range(20):
            try:
                write_image(target, image)
            except OSError as err:  # collected for the assertion
                errors.append(err)

    threads = [threading.Thread(target=write_many, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.png"]
    read_image(target)


def test_animations_and_multipage_files_are_refused_by_name_and_the_rest_goes_on(
    tmp_path: Path, identity_ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: an animated GIF crashed predict at write time (the inputs after it were never
    done) and a 3-page TIFF silently became its first page."""
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(3)]
    src = tmp_path / "in"
    src.mkdir()
    frames[0].save(src / "pages.tif", save_all=True, append_images=frames[1:])
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    frames[0].save(src / "still.gif")
    frames[0].save(src / "z_after.png")
    out = tmp_path / "out"
    inputs = [str(src / n) for n in ("pages.tif", "anim.gif", "still.gif", "z_after.png")]
    assert main(["--checkpoint", str(identity_ckpt), *inputs, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {src / 'pages.tif'}: holds 3 images (an animation or")
    assert errors[1].startswith(f"error: {src / 'anim.gif'}: holds 3 images")
    assert "2 written, 0 already done, 2 failed" in captured.out
    # A single-frame GIF is read, and written as PNG (GIF is read but not written).
    assert sorted(p.name for p in out.iterdir()) == ["still.png", "z_after.png"]
