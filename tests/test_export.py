"""Export: safetensors + JSON load back through load_generator; ONNX matches PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from realblur_gan.export import ONNX_TOLERANCE, check_onnx, export_onnx, export_safetensors, main
from realblur_gan.nets import NAFNet, ResNetGenerator, UNet
from realblur_gan.weights.checkpoints import load_generator
from realblur_gan.weights.net_configs import NetConfigError

TINY = {"_target_": "realblur_gan.nets.UNet", "in_channels": 3, "out_channels": 3}
TINY |= {"width": 4, "depth": 2}


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, UNet]:
    torch.manual_seed(0)
    net = UNet(3, 3, width=4, depth=2).eval()
    path = tmp_path / "last.ckpt"
    state = {f"dbgan_g.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "net_configs": {"dbgan_g": TINY}}, path)
    return path, net


def test_safetensors_round_trip(tmp_path: Path, checkpoint: tuple[Path, UNet]) -> None:
    _, net = checkpoint
    weights, sidecar = export_safetensors(net, TINY, tmp_path / "exp", "dbgan_g")
    assert json.loads(sidecar.read_text()) == TINY
    x = torch.rand(1, 3, 20, 24)
    for source in (tmp_path / "exp", weights):
        loaded = load_generator(source)
        assert torch.equal(loaded(x), net(x))
    sidecar.unlink()  # the config is also in the file's metadata
    assert torch.equal(load_generator(weights)(x), net(x))


def test_exported_config_is_checked_too(tmp_path: Path, checkpoint: tuple[Path, UNet]) -> None:
    _, net = checkpoint
    weights, sidecar = export_safetensors(net, TINY, tmp_path / "exp", "dbgan_g")
    sidecar.write_text(json.dumps({**TINY, "_target_": "builtins.exec"}))
    with pytest.raises(NetConfigError, match="refusing _target_"):
        load_generator(weights)


@pytest.mark.parametrize(
    "net",
    [UNet(3, 3, width=4, depth=2), ResNetGenerator(1, 1, width=4, n_blocks=1)],
    ids=["unet", "resnet_gray"],
)
def test_onnx_matches_pytorch_at_two_sizes(tmp_path: Path, net: torch.nn.Module) -> None:
    path = export_onnx(net.eval(), tmp_path / "g.onnx")
    diff = check_onnx(net, path, [(32, 48), (20, 60)])
    assert diff < ONNX_TOLERANCE


def test_cli_writes_all_three_files(
    tmp_path: Path, checkpoint: tuple[Path, UNet], capsys: pytest.CaptureFixture[str]
) -> None:
    path, net = checkpoint
    out = tmp_path / "exported"
    assert main([str(path), "--out", str(out), "--onnx"]) == 0
    assert {p.name for p in out.iterdir()} == {
        "dbgan_g.safetensors",
        "dbgan_g.json",
        "dbgan_g.onnx",
    }
    assert "max |ONNX - PyTorch|" in capsys.readouterr().out
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(load_generator(out)(x), net(x))
    assert main([str(tmp_path / "missing.ckpt"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


def _full_disk(path, *args, **kwargs) -> None:
    """A write that gets half-way and finds the disk full."""
    Path(path).write_bytes(b"half a file")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("fault", ["oserror", "safetensors"])
def test_a_full_disk_is_one_line_and_leaves_nothing(
    fault: str,
    tmp_path: Path,
    checkpoint: tuple[Path, UNet],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: a 6-frame traceback (safetensors reports ENOSPC as its own error type)."""
    import safetensors.torch
    from safetensors import SafetensorError

    if fault == "oserror":  # the weights' temporary file gets half-way and the disk is full
        real_write = Path.write_bytes

        def write(self: Path, data: bytes) -> int:
            if ".partial" in self.name:
                real_write(self, data[: len(data) // 2])
                raise OSError(28, "No space left on device")
            return real_write(self, data)

        monkeypatch.setattr(Path, "write_bytes", write)
    else:  # safetensors reports ENOSPC as its own error type

        def full(tensors, *args, **kwargs) -> bytes:
            raise SafetensorError("Error while serializing: I/O error: No space left on device")

        monkeypatch.setattr(safetensors.torch, "save", full)
    out = tmp_path / "exported"
    assert main([str(checkpoint[0]), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: {out}: cannot write dbgan_g.safetensors and dbgan_g.json (")
    assert "No space left on device" in err[0] and "free disk space" in err[0]
    assert list(out.iterdir()) == []  # no partial file, no temporary file, no lock file


def test_a_full_disk_at_the_onnx_step_is_one_line(
    tmp_path: Path,
    checkpoint: tuple[Path, UNet],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import onnx

    monkeypatch.setattr(onnx, "save", lambda model, path, *a, **k: _full_disk(path))
    out = tmp_path / "exported"
    assert main([str(checkpoint[0]), "--out", str(out), "--onnx"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {out}: cannot write dbgan_g.onnx (No space left on device); nothing was left "
        "there: free disk space or pass another --out"
    ]
    # The finished safetensors export stays; nothing of the ONNX file does.
    assert sorted(p.name for p in out.iterdir()) == ["dbgan_g.json", "dbgan_g.safetensors"]


def test_exported_files_are_readable_like_any_file_the_user_writes(
    tmp_path: Path, checkpoint: tuple[Path, UNet]
) -> None:
    """safetensors' own writer makes its files 0600; an export is 0666 less the umask."""
    import os

    _, net = checkpoint
    old = os.umask(0o022)
    try:
        weights, sidecar = export_safetensors(net, TINY, tmp_path / "exp", "dbgan_g")
    finally:
        os.umask(old)
    assert weights.stat().st_mode & 0o777 == 0o644
    assert sidecar.stat().st_mode & 0o777 == 0o644


def test_onnx_without_its_extra_is_one_line_and_writes_nothing(
    tmp_path: Path,
    checkpoint: tuple[Path, UNet],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    out = tmp_path / "exported"
    assert main([str(checkpoint[0]), "--out", str(out), "--onnx"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "error: --onnx needs onnx, which is not installed: pip install 'realblur-gan[onnx]'"
    )
    assert not list(out.glob("*"))  # not half an export


def test_onnx_of_a_net_with_a_local_sca_window_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnx")
    config = {"_target_": "realblur_gan.nets.NAFNet", "width": 4, "enc_blocks": [1]}
    config |= {"middle_blocks": 1, "dec_blocks": [1], "sca_window": 64}
    net = NAFNet(**{k: v for k, v in config.items() if k != "_target_"})
    path = tmp_path / "last.ckpt"
    state = {f"dbgan_g.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "net_configs": {"dbgan_g": config}}, path)
    out = tmp_path / "exported"
    assert main([str(path), "--out", str(out), "--onnx"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --onnx: this net (or a member of it) computes differently")
    assert line.endswith("export without --onnx (the .safetensors runs in torch)")
    assert not list(out.glob("*"))
