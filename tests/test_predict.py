"""Inference: loading generators safely, any size, tiles, image modes, the CLI's file handling."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from realblur_gan.checkpoints import CheckpointError
from realblur_gan.data.io import read_image, write_image
from realblur_gan.nets import NoiseInjection, ResNetGenerator, UNet
from realblur_gan.predict import (
    InputError,
    NetConfigError,
    deblur_image,
    load_generator,
    main,
    read_net_config,
    resolve_inputs,
)

TINY = {"_target_": "realblur_gan.nets.UNet", "in_channels": 3, "out_channels": 3}
TINY |= {"width": 4, "depth": 2}


def save_checkpoint(
    path: Path, net: nn.Module, config: dict[str, Any] | None = TINY, name: str = "dbgan_g"
) -> Path:
    """A checkpoint shaped like training's: prefixed state dict plus ``net_configs``."""
    blob: dict[str, Any] = {"state_dict": {f"{name}.{k}": v for k, v in net.state_dict().items()}}
    blob["state_dict"]["iteration"] = torch.tensor(3)
    if config is not None:
        blob["net_configs"] = {name: config}
    torch.save(blob, path)
    return path


@pytest.fixture
def tiny_net() -> UNet:
    torch.manual_seed(0)
    return UNet(3, 3, width=4, depth=2).eval()


@pytest.fixture
def identity_ckpt(tmp_path: Path) -> Path:
    """A U-Net whose residual is zero: its output equals its input, exposing any IO loss."""
    return save_checkpoint(
        tmp_path / "identity.ckpt", UNet(3, 3, width=4, depth=2).zero_residual_()
    )


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def test_load_generator_rebuilds_the_net(tmp_path: Path, tiny_net: UNet) -> None:
    net = load_generator(save_checkpoint(tmp_path / "a.ckpt", tiny_net))
    assert isinstance(net, UNet) and not net.training
    assert net.image_channels == 3 and net.net_config == TINY
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(net(x), tiny_net(x))


def test_ema_weights_are_preferred(tmp_path: Path, tiny_net: UNet) -> None:
    ema = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    path = save_checkpoint(tmp_path / "ema.ckpt", tiny_net)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] |= {f"dbgan_g_ema.{k}": v for k, v in ema.state_dict().items()}
    torch.save(blob, path)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(load_generator(path)(x), ema(x))
    assert torch.equal(load_generator(path, ema=False)(x), tiny_net(x))


def test_nested_configs_of_allowed_nets_load(tmp_path: Path) -> None:
    # DeepDeblur-style: a `_partial_` sub-net factory inside the generator's config.
    config = {
        "_target_": "realblur_gan.nets.MultiScaleGenerator",
        "num_scales": 2,
        "scale_net": {"_target_": "realblur_gan.nets.ResNetGenerator", "_partial_": True}
        | {"width": 4, "n_blocks": 1},
    }
    from hydra.utils import instantiate

    net = instantiate(config).eval()
    loaded = load_generator(save_checkpoint(tmp_path / "ms.ckpt", net, config))
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded(x), net(x))
    assert deblur_image(loaded, torch.rand(1, 3, 15, 9), tile=None, overlap=0).shape[-2:] == (15, 9)


# The BGAN generator as checkpoints stored it before NoiseInjection built its own net: the
# inner net fully built, its input channels (3 image + 1 noise) written out.
OLD_BGAN_G = {
    "_target_": "realblur_gan.nets.NoiseInjection",
    "channels": 1,
    "scale": 0.1,
    "net": {"_target_": "realblur_gan.nets.UNet", "in_channels": 4, "out_channels": 3}
    | {"width": 4, "depth": 3, "norm": "none", "global_residual": True},
}


@pytest.mark.parametrize("image_channels", [1, 3])
def test_noise_injection_bgan_rebuilds_from_the_config_training_stores(
    tmp_path: Path, tiny_config, image_channels: int
) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = tiny_config(None, f"model.image_channels={image_channels}")
    # What train.build_stage writes into checkpoint["net_configs"].
    stored = OmegaConf.to_container(cfg.model.bgan_g, resolve=True)
    assert stored["image_channels"] == image_channels and stored["net"]["_partial_"] is True
    torch.manual_seed(0)
    net = instantiate(stored).eval()
    loaded = load_generator(save_checkpoint(tmp_path / "b.ckpt", net, stored, "bgan_g"), "bgan_g")
    assert loaded.image_channels == image_channels
    x = torch.rand(1, image_channels, 16, 16)
    torch.manual_seed(1)
    expected = net(x)
    torch.manual_seed(1)  # the same noise draw
    assert torch.equal(loaded(x), expected)


def test_noise_injection_bgan_rebuilds_from_a_config_stored_before_the_factory_form(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    net = NoiseInjection(UNet(4, 3, width=4, depth=3), channels=1, scale=0.1).eval()
    loaded = load_generator(
        save_checkpoint(tmp_path / "old.ckpt", net, OLD_BGAN_G, "bgan_g"), "bgan_g"
    )
    assert loaded.image_channels == 3 and loaded.net_config == OLD_BGAN_G
    x = torch.rand(1, 3, 16, 16)
    torch.manual_seed(1)
    expected = net(x)
    torch.manual_seed(1)
    assert torch.equal(loaded(x), expected)


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "torch.nn.Identity",
        "realblur_gan.nets.init.torch.nn.Conv2d",  # the prefix alone is not enough
        "realblur_gan.nets.init.init_weights",  # a function, not a net
        "realblur_gan.nets.__builtins__.eval",
    ],
)
def test_config_outside_realblur_gan_nets_is_refused(
    tmp_path: Path, tiny_net: UNet, target: str
) -> None:
    path = save_checkpoint(tmp_path / "evil.ckpt", tiny_net, {**TINY, "_target_": target})
    with pytest.raises(NetConfigError, match="refusing _target_"):
        load_generator(path)


def test_nested_target_and_interpolation_are_refused(tmp_path: Path, tiny_net: UNet) -> None:
    nested = {"_target_": "realblur_gan.nets.NoiseInjection", "net": {"_target_": "os.getcwd"}}
    with pytest.raises(NetConfigError, match=r"os\.getcwd"):
        load_generator(save_checkpoint(tmp_path / "n.ckpt", tiny_net, nested))
    interp = {**TINY, "width": "${oc.env:HOME}"}
    with pytest.raises(NetConfigError, match="interpolation"):
        load_generator(save_checkpoint(tmp_path / "i.ckpt", tiny_net, interp))


def test_checkpoint_without_config_needs_net_config(tmp_path: Path, tiny_net: UNet) -> None:
    path = save_checkpoint(tmp_path / "old.ckpt", tiny_net, config=None)
    with pytest.raises(NetConfigError, match="--net-config"):
        load_generator(path)
    # A whole model config, with ${model.*} interpolations, as conf/model/*.yaml are written.
    yaml = tmp_path / "model.yaml"
    yaml.write_text(
        "image_channels: 3\n"
        "dbgan_g:\n"
        "  _target_: realblur_gan.nets.UNet\n"
        "  in_channels: ${model.image_channels}\n"
        "  out_channels: ${model.image_channels}\n"
        "  width: 4\n"
        "  depth: 2\n"
    )
    assert read_net_config(yaml)["in_channels"] == 3
    net = load_generator(path, net_config=yaml)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(net(x), tiny_net(x))


def test_bad_checkpoints_give_one_line_errors(tmp_path: Path, tiny_net: UNet) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_generator(junk)
    path = save_checkpoint(tmp_path / "b.ckpt", tiny_net, name="bgan_g")
    with pytest.raises(CheckpointError, match="no 'dbgan_g' weights"):
        load_generator(path)
    wrong = save_checkpoint(tmp_path / "w.ckpt", tiny_net, {**TINY, "width": 8})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_generator(wrong)


# --------------------------------------------------------------------------------------------------
# deblur_image
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(37, 53), (1, 5), (16, 16)])
def test_any_size_comes_back_the_same_size(tiny_net: UNet, size: tuple[int, int]) -> None:
    out = deblur_image(tiny_net, torch.rand(1, 3, *size), tile=None, overlap=0)
    assert out.shape == (1, 3, *size)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_tiled_equals_untiled_when_receptive_field_fits_the_overlap() -> None:
    # 7 3x3 convs: receptive-field radius 7 <= overlap // 4 = 8, so tiles are exact.
    torch.manual_seed(0)
    net = ResNetGenerator(3, 3, width=4, n_blocks=1).eval()
    x = torch.rand(1, 3, 101, 157)
    whole = deblur_image(net, x, tile=None, overlap=0)
    tiled = deblur_image(net, x, tile=64, overlap=32)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_tiled_unet_is_close_to_untiled(tiny_net: UNet) -> None:
    # A U-Net sees further than the overlap: tiles differ slightly near the seams.
    x = torch.rand(1, 3, 101, 157)
    whole = deblur_image(tiny_net, x, tile=None, overlap=0)
    tiled = deblur_image(tiny_net, x, tile=64, overlap=32)
    diff = (tiled - whole).abs()
    assert float(diff.max()) < 5e-3 and float(diff.mean()) < 2e-4


def test_gray_through_a_colour_net(tiny_net: UNet) -> None:
    gray = torch.rand(1, 1, 20, 24)
    out = deblur_image(tiny_net, gray, tile=None, overlap=0)
    assert out.shape == gray.shape
    identity = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    assert torch.allclose(deblur_image(identity, gray, tile=16, overlap=8), gray, atol=1e-6)


def test_bad_overlap_is_refused(tiny_net: UNet) -> None:
    with pytest.raises(ValueError, match="overlap"):
        deblur_image(tiny_net, torch.rand(1, 3, 64, 64), tile=32, overlap=24)


# --------------------------------------------------------------------------------------------------
# Files and CLI
# --------------------------------------------------------------------------------------------------


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
