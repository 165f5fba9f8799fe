"""The effective receptive field (``scripts/receptive_field.py``): radii a known net must give."""

from __future__ import annotations

import pytest
import torch
from conftest import load_script
from torch import nn
from torch.nn import functional as F


@pytest.fixture(scope="module")
def rf():
    return load_script("receptive_field")


class BoxBlur(nn.Module):
    """Output = input + a k x k box average: the correction reads exactly k x k pixels."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.avg_pool2d(x, self.k, stride=1, padding=self.k // 2, count_include_pad=False)


class GlobalMean(nn.Module):
    """Output = input + its mean: every pixel weighs the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x.mean(dim=(-2, -1), keepdim=True)


def test_a_box_of_side_k_reads_radius_k_over_2_and_its_mass_is_uniform(rf):
    image = torch.rand(1, 3, 65, 65)
    grad = rf.gradient_map(BoxBlur(9), image)
    assert grad.shape == (65, 65)
    assert (grad > 0).sum() == 81 and grad[32, 32] > 0
    # 81 equal weights: the 3x3 centre holds 9/81, 5x5 25/81, 7x7 49/81, 9x9 all of it.
    assert rf.mass_radii(grad, (0.1, 0.3, 0.6, 0.9, 1.0)) == [1, 2, 3, 4, 4]


def test_a_global_pool_spreads_the_mass_over_the_whole_crop(rf):
    grad = rf.gradient_map(GlobalMean(), torch.rand(1, 3, 41, 41))
    r50, r90, r99 = rf.mass_radii(grad)
    # Uniform mass: the square of side 2r+1 holds (2r+1)^2 / 41^2 of it.
    assert (2 * r50 + 1) ** 2 >= 0.5 * 41**2 > (2 * r50 - 1) ** 2
    assert r99 == 20 and r50 < r90 < r99


def test_bad_input_is_one_line(rf, tmp_path, capsys):
    assert rf.main(["--size", "4"]) == 2
    assert capsys.readouterr().err.strip() == "receptive_field: --size 4: use at least 8 px"
    assert rf.main(["--image", str(tmp_path / "missing.png")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "missing.png" in line


def test_main_measures_a_checkpoint_and_writes_its_radii(rf, tmp_path, capsys):
    from realblur_gan.nets import UNet

    torch.manual_seed(0)
    config = {"_target_": "realblur_gan.nets.UNet", "width": 4, "depth": 2, "tail_scale": 1.0}
    net = UNet(width=4, depth=2, tail_scale=1.0)
    path = tmp_path / "last.ckpt"
    state = {f"dbgan_g.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "net_configs": {"dbgan_g": config}}, path)
    out = tmp_path / "rf.csv"
    assert rf.main(["--checkpoint", str(path), "--size", "32", "--out", str(out)]) == 0
    header, row = (line.split(",") for line in out.read_text().splitlines())
    assert header == ["net", "r50", "r90", "r99"] and row[0] == str(path)
    r50, r90, r99 = map(int, row[1:])
    assert 0 <= r50 <= r90 <= r99 <= 16
    assert f"| {path} | {r50} / {r90} / {r99} |" in capsys.readouterr().out
