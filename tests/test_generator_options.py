"""The --checkpoint/--net/--no-ema/--net-config options, the same in predict, evaluate, export."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from conftest import save_net_checkpoint
from torch import nn

from realblur_gan import evaluate, export, predict
from realblur_gan.cli.generator_options import add_generator_options, generator_from_options
from realblur_gan.errors import UserError
from realblur_gan.weights.checkpoints import CheckpointError

REQUIRED = {
    predict: ["photo.png", "--out", "o"],
    evaluate: ["--sharp", "s"],
    export: ["--out", "o"],
}


@pytest.mark.parametrize("tool", [predict, evaluate, export], ids=lambda m: m.__name__)
def test_every_tool_takes_the_same_options(tool) -> None:
    parser = tool.build_parser()
    args = parser.parse_args(REQUIRED[tool])
    assert (args.checkpoint, args.net, args.no_ema, args.net_config) == (
        None,
        "dbgan_g",
        False,
        None,
    )
    given = ["--checkpoint", "a.ckpt", "--net", "bgan_g", "--no-ema", "--net-config", "m.yaml"]
    args = parser.parse_args([*REQUIRED[tool], *given])
    assert (args.checkpoint, args.net, args.no_ema, args.net_config) == (
        Path("a.ckpt"),
        "bgan_g",
        True,
        Path("m.yaml"),
    )


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_generator_options(parser, "the model")
    return parser.parse_args(argv)


def test_options_load_the_named_net(tmp_path: Path, tiny_net: nn.Module) -> None:
    ema = type(tiny_net)(3, 3, width=4, depth=2).zero_residual_().eval()
    path = save_net_checkpoint(tmp_path / "g.ckpt", tiny_net)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] |= {f"dbgan_g_ema.{k}": v for k, v in ema.state_dict().items()}
    torch.save(blob, path)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(generator_from_options(_parse(["--checkpoint", str(path)]))(x), ema(x))
    raw = generator_from_options(_parse(["--checkpoint", str(path), "--no-ema"]))
    assert torch.equal(raw(x), tiny_net(x))
    # A checkpoint named another way (a positional argument) wins over the packaged default.
    assert torch.equal(generator_from_options(_parse([]), path)(x), ema(x))
    with pytest.raises(CheckpointError, match="no 'bgan_g' weights"):
        generator_from_options(_parse(["--checkpoint", str(path), "--net", "bgan_g"]))


def test_no_checkpoint_means_the_packaged_model(packaged_weights: Path) -> None:
    net = generator_from_options(_parse([]))
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(net(x), x)
    with pytest.raises(UserError, match="packaged model is the DBGAN"):
        generator_from_options(_parse(["--net", "bgan_g"]))


def test_a_packaged_models_name_loads_its_verified_file(
    tmp_path: Path, packaged_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realblur_gan.weights.model_zoo import DEFAULT_MODEL

    monkeypatch.chdir(tmp_path)  # no file called like the model here
    net = generator_from_options(_parse(["--checkpoint", DEFAULT_MODEL]))
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(net(x), x)
    with pytest.raises(UserError, match="packaged model is the DBGAN"):
        generator_from_options(_parse(["--checkpoint", DEFAULT_MODEL, "--net", "bgan_g"]))
    packaged_weights.write_bytes(packaged_weights.read_bytes()[:-8])  # damaged: refused
    with pytest.raises(CheckpointError, match="damaged or was replaced"):
        generator_from_options(_parse(["--checkpoint", DEFAULT_MODEL]))


def test_export_writes_the_packaged_model_without_a_checkpoint(
    tmp_path: Path, packaged_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export.main(["--out", str(tmp_path / "exp")]) == 0
    assert (tmp_path / "exp" / "dbgan_g.safetensors").is_file()
    capsys.readouterr()
    ckpt = tmp_path / "x.ckpt"
    assert export.main([str(ckpt), "--checkpoint", str(ckpt), "--out", str(tmp_path / "e")]) == 2
    assert "pass the checkpoint once" in capsys.readouterr().err
