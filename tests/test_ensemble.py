"""OutputAverage: the weighted mean of two deblurrers' outputs, exported as one net and loaded
back from the file alone (``python -m realblur_gan.export --average-with``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from realblur_gan.export import ONNX_TOLERANCE, check_onnx, export_onnx, main
from realblur_gan.nets import NAFNet, UNet
from realblur_gan.nets.ensemble import OutputAverage
from realblur_gan.weights.checkpoints import load_generator

UNET = {"_target_": "realblur_gan.nets.UNet", "in_channels": 3, "out_channels": 3}
UNET |= {"width": 4, "depth": 2, "keep_mean": True}
NAF = {"_target_": "realblur_gan.nets.NAFNet", "in_channels": 3, "out_channels": 3}
NAF |= {"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]}
NAF |= {"keep_mean": True}


def _save(path: Path, net: torch.nn.Module, config: dict) -> Path:
    state = {f"dbgan_g.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "net_configs": {"dbgan_g": config}}, path)
    return path


def _perturbed(net: torch.nn.Module, seed: int, scale: float = 0.02) -> torch.nn.Module:
    """A net whose residual is far from zero, so that the members' outputs differ."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return net.eval()


@pytest.fixture
def members(tmp_path: Path) -> tuple[Path, UNet, Path, NAFNet]:
    unet = _perturbed(UNet(3, 3, width=4, depth=2, keep_mean=True), 1)
    naf = NAFNet(**{k: v for k, v in NAF.items() if k != "_target_"})
    naf = _perturbed(naf, 2, scale=0.005)
    return _save(tmp_path / "u.ckpt", unet, UNET), unet, _save(tmp_path / "n.ckpt", naf, NAF), naf


def test_output_is_the_weighted_mean_of_the_members() -> None:
    a = _perturbed(UNet(3, 3, width=4, depth=2), 3)
    b = _perturbed(UNet(3, 3, width=4, depth=2), 4)
    x = torch.rand(2, 3, 20, 28)
    pair = OutputAverage([a, b], [3.0, 1.0])  # normalised to 0.75 / 0.25
    assert pair.weights == [0.75, 0.25]
    torch.testing.assert_close(pair(x), 0.75 * a(x) + 0.25 * b(x))
    assert not torch.allclose(a(x), b(x), atol=1e-3)
    torch.testing.assert_close(OutputAverage([a, b])(x), 0.5 * (a(x) + b(x)))


def test_size_multiple_is_every_members_and_gradients_reach_both() -> None:
    naf = NAFNet(3, 3, width=4, enc_blocks=[1, 1, 1], middle_blocks=1, dec_blocks=[1, 1, 1])
    pair = OutputAverage([UNet(3, 3, width=4, depth=2), naf])
    assert naf.stride == 8 and pair.stride == 8
    pair(torch.rand(1, 3, 16, 16)).square().mean().backward()
    for member in pair.nets:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in member.parameters())


@pytest.mark.parametrize(
    ("nets", "weights", "match"),
    [
        (1, None, "at least two"),
        (2, [1.0], "2 nets"),
        (2, [1.0, -1.0], ">= 0"),
        (2, [0, 0], ">= 0"),
    ],
)
def test_bad_ensembles_are_refused(nets: int, weights: list[float] | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OutputAverage([UNet(3, 3, width=4, depth=2) for _ in range(nets)], weights)


def test_colour_kept_by_members_is_kept_by_their_mean(
    members: tuple[Path, UNet, Path, NAFNet],
) -> None:
    _, unet, _, naf = members
    x = 0.25 + 0.5 * torch.rand(1, 3, 32, 40)  # mid-grey: no output clipped at 0 or 1
    out = OutputAverage([unet, naf], [0.3, 0.7])(x)
    assert (out - x).abs().mean() > 0.01  # the members do change the image
    torch.testing.assert_close(out.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=2e-4, rtol=0)


def test_export_average_with_writes_one_net_that_loads_from_the_file_alone(
    tmp_path: Path, members: tuple[Path, UNet, Path, NAFNet], capsys: pytest.CaptureFixture[str]
) -> None:
    u_path, unet, n_path, naf = members
    out = tmp_path / "pair"
    code = main([str(u_path), "--average-with", str(n_path), "--weight", "0.25", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "0.25 x the checkpoint + 0.75 x" in capsys.readouterr().out
    config = json.loads((out / "dbgan_g.json").read_text())
    assert config["_target_"] == "realblur_gan.nets.ensemble.OutputAverage"
    assert config["weights"] == [0.25, 0.75]
    assert [m["_target_"] for m in config["nets"]] == [UNET["_target_"], NAF["_target_"]]
    (out / "dbgan_g.json").unlink()  # the config travels in the weights' metadata too
    loaded = load_generator(out / "dbgan_g.safetensors")
    assert isinstance(loaded, OutputAverage) and loaded.image_channels == 3
    x = torch.rand(1, 3, 24, 32)
    torch.testing.assert_close(loaded(x), 0.25 * unet(x) + 0.75 * naf(x))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weight", "0.5"], "pass --average-with MODEL"),
        (["--average-with", "X", "--weight", "1"], "strictly between 0 and 1"),
        (["--average-with", "X", "--start", "Y", "--alpha", "1"], "export the interpolated net"),
        (["--average-with", "missing.ckpt"], "--average-with missing.ckpt: no such file"),
    ],
)
def test_bad_average_options_are_one_line(
    tmp_path: Path,
    members: tuple[Path, UNet, Path, NAFNet],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    u_path, *_ = members
    out = tmp_path / "pair"
    assert main([str(u_path), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "dbgan_g.safetensors").exists()


def test_members_for_other_images_are_refused(
    tmp_path: Path, members: tuple[Path, UNet, Path, NAFNet], capsys: pytest.CaptureFixture[str]
) -> None:
    u_path, *_ = members
    gray_config = {**UNET, "in_channels": 1, "out_channels": 1}
    gray = _save(tmp_path / "g.ckpt", UNet(1, 1, width=4, depth=2, keep_mean=True), gray_config)
    assert main([str(u_path), "--average-with", str(gray), "--out", str(tmp_path / "x")]) == 2
    assert "maps 1-channel images where the checkpoint maps 3" in capsys.readouterr().err


def test_onnx_of_an_ensemble_matches_pytorch(
    tmp_path: Path, members: tuple[Path, UNet, Path, NAFNet]
) -> None:
    _, unet, _, naf = members
    pair = OutputAverage([unet, naf]).eval()
    path = export_onnx(pair, tmp_path / "pair.onnx")
    assert check_onnx(pair, path, [(32, 48), (20, 60)]) < ONNX_TOLERANCE


def test_the_packaged_pairs_nafnet_recipe_is_one_experiment(tmp_path: Path) -> None:
    """``+experiment=packaged_pair``: packaged_nafnet without real pairs and without noise."""
    from hydra import compose, initialize_config_dir

    from realblur_gan.training.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=packaged_pair", f"data_root={tmp_path}"])
        base = compose("train", overrides=["+experiment=packaged_nafnet", f"data_root={tmp_path}"])
    assert cfg.model.dbgan_g._target_.endswith("NAFNet") and cfg.model.dbgan_g.keep_mean
    assert cfg.data.real_pairs_ratio == 0
    blur = cfg.data.synthetic_blur
    assert blur.noise_shot is None and blur.noise_read is None
    assert blur.kernel_size_law == "log" and list(blur.jpeg_quality) == [70, 95]
    assert cfg.stages.joint.trainer.max_epochs == base.stages.joint.trainer.max_epochs == 20
