"""Loading generators safely: stored configs, the _target_ allow-list, EMA, the packaged model."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch
from conftest import TINY_NET, save_net_checkpoint
from torch import nn

from realblur_gan.inference.tiling import deblur_image
from realblur_gan.nets import UNet
from realblur_gan.weights.checkpoints import CheckpointError, load_generator
from realblur_gan.weights.model_zoo import packaged_model
from realblur_gan.weights.net_configs import NetConfigError, read_net_config

ROOT = Path(__file__).resolve().parents[1]


def test_load_generator_rebuilds_the_net(tmp_path: Path, tiny_net: nn.Module) -> None:
    net = load_generator(save_net_checkpoint(tmp_path / "a.ckpt", tiny_net))
    assert isinstance(net, UNet) and not net.training
    assert net.image_channels == 3 and net.net_config == TINY_NET
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(net(x), tiny_net(x))


def test_ema_weights_are_preferred(tmp_path: Path, tiny_net: nn.Module) -> None:
    ema = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    path = save_net_checkpoint(tmp_path / "ema.ckpt", tiny_net)
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
    loaded = load_generator(save_net_checkpoint(tmp_path / "ms.ckpt", net, config))
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded(x), net(x))
    assert deblur_image(loaded, torch.rand(1, 3, 15, 9), tile=None, overlap=0).shape[-2:] == (15, 9)


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
    tmp_path: Path, tiny_net: nn.Module, target: str
) -> None:
    path = save_net_checkpoint(tmp_path / "evil.ckpt", tiny_net, {**TINY_NET, "_target_": target})
    with pytest.raises(NetConfigError, match="refusing _target_"):
        load_generator(path)


def test_nested_target_and_interpolation_are_refused(tmp_path: Path, tiny_net: nn.Module) -> None:
    nested = {"_target_": "realblur_gan.nets.NoiseInjection", "net": {"_target_": "os.getcwd"}}
    with pytest.raises(NetConfigError, match=r"os\.getcwd"):
        load_generator(save_net_checkpoint(tmp_path / "n.ckpt", tiny_net, nested))
    interp = {**TINY_NET, "width": "${oc.env:HOME}"}
    with pytest.raises(NetConfigError, match="interpolation"):
        load_generator(save_net_checkpoint(tmp_path / "i.ckpt", tiny_net, interp))


def test_checkpoint_without_config_needs_net_config(tmp_path: Path, tiny_net: nn.Module) -> None:
    path = save_net_checkpoint(tmp_path / "old.ckpt", tiny_net, config=None)
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


def test_bad_checkpoints_give_one_line_errors(tmp_path: Path, tiny_net: nn.Module) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_generator(junk)
    path = save_net_checkpoint(tmp_path / "b.ckpt", tiny_net, name="bgan_g")
    with pytest.raises(CheckpointError, match="no 'dbgan_g' weights"):
        load_generator(path)
    wrong = save_net_checkpoint(tmp_path / "w.ckpt", tiny_net, {**TINY_NET, "width": 8})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_generator(wrong)


def test_bad_net_config_metadata_is_one_line(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"net_config": "{not json"})
    with pytest.raises(CheckpointError, match="not JSON"):
        load_generator(path)


# --------------------------------------------------------------------------------------------------
# The packaged model
# --------------------------------------------------------------------------------------------------


def test_packaged_model_loads_from_its_metadata(packaged_weights: Path) -> None:
    assert packaged_model() == packaged_weights
    assert not packaged_weights.with_suffix(".json").exists()  # the config is in the metadata
    net = load_generator(packaged_model())
    x = torch.rand(1, 3, 16, 16)
    assert isinstance(net, UNet) and net.net_config == TINY_NET
    assert torch.allclose(net(x), x)  # the identity weights, not a fresh init


def test_absent_packaged_model_is_one_line(no_packaged_weights: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        packaged_model()
    message = str(caught.value)
    assert "no packaged model is installed" in message and "--checkpoint" in message
    assert str(no_packaged_weights) in message and len(message.splitlines()) == 1


def test_package_data_ships_the_packaged_model() -> None:
    from realblur_gan.weights import model_zoo

    entry = model_zoo.MODELS[model_zoo.DEFAULT_MODEL]
    assert entry.path.parent == ROOT / "realblur_gan" / "weights"
    assert (ROOT / "realblur_gan" / "weights" / "MODEL_CARD.md").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["realblur_gan.weights"]
    assert {"*.safetensors", "*.md"} <= set(patterns)
    assert "realblur_gan.weights" in config["packages"]


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
    path = save_net_checkpoint(tmp_path / "b.ckpt", net, stored, "bgan_g")
    loaded = load_generator(path, "bgan_g")
    assert loaded.image_channels == image_channels
    x = torch.rand(1, image_channels, 16, 16)
    torch.manual_seed(1)
    expected = net(x)
    torch.manual_seed(1)  # the same noise draw
    assert torch.equal(loaded(x), expected)


def test_noise_injection_bgan_rebuilds_from_a_config_stored_before_the_factory_form(
    tmp_path: Path,
) -> None:
    from realblur_gan.nets import NoiseInjection

    torch.manual_seed(0)
    net = NoiseInjection(UNet(4, 3, width=4, depth=3), channels=1, scale=0.1).eval()
    path = save_net_checkpoint(tmp_path / "old.ckpt", net, OLD_BGAN_G, "bgan_g")
    loaded = load_generator(path, "bgan_g")
    assert loaded.image_channels == 3 and loaded.net_config == OLD_BGAN_G
    x = torch.rand(1, 3, 16, 16)
    torch.manual_seed(1)
    expected = net(x)
    torch.manual_seed(1)
    assert torch.equal(loaded(x), expected)
