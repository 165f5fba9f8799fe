"""scripts/net_efficiency.py: FLOPs per megapixel and parameters of the shipped generators."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script

from realblur_gan.nets import UNet
from realblur_gan.weights.net_configs import read_net_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "net_efficiency.py"
MODELS = SCRIPT.parents[1] / "conf" / "model"


@pytest.fixture(scope="module")
def efficiency():
    return load_script("net_efficiency")


def test_flops_per_megapixel_of_a_config_and_of_a_net(efficiency) -> None:
    config = read_net_config(MODELS / "default.yaml", "dbgan_g")
    # The packaged U-Net's cost quoted in issue 26: 171 GFLOP per 1280x720 frame.
    assert efficiency.gflop_per_megapixel(config) == pytest.approx(171.196416 / 0.9216, rel=1e-6)
    assert efficiency.parameter_count(config) == sum(
        p.numel() for p in UNet(width=24, depth=3).parameters()
    )
    net = UNet(width=8, depth=2)
    # Convolutions only: 2 FLOPs per multiply-add, linear in the pixels (a stride multiple).
    expected = sum(
        2 * m.weight.numel() * (256 * 256) // (m.stride[0] * m.stride[1]) // 4**level
        for level, m in _levels(net)
    )
    assert efficiency.gflop_per_megapixel(net, 256, 256) == pytest.approx(
        expected / 1e9 / (256 * 256 / 1e6), rel=1e-6
    )
    assert next(net.parameters()).device.type == "cpu"  # the caller's net is left alone


def _levels(net: UNet):
    """Each conv of the U-Net with its input's level (resolution halvings before it)."""
    yield 0, net.head[0]
    for level, down in enumerate(net.downs):
        yield level, down.body[0]
        yield level + 1, down.body[3]
    for i, up in enumerate(net.ups):
        level = len(net.ups) - 1 - i
        yield level, up.reduce[0]
        yield level, up.merge[0]
    yield 0, net.tail


def test_table_has_a_row_per_shipped_config_and_the_scores(tmp_path: Path) -> None:
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"default": 1.27, "packaged": 1.2}))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scores", str(scores), "--score-name", "dB gained"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].endswith("| dB gained |")
    names = [row.split("|")[1].strip() for row in rows[1:]]
    assert names[:-1] == [*sorted(p.stem for p in MODELS.glob("*.yaml")), "packaged"]
    default = rows[1 + names.index("default")].split("|")
    assert [c.strip() for c in default[2:7]] == ["UNet", "1.26", "186", "214", "1.27"]
