"""The generalisation benchmark: its parts, its measures and its files, on generated data."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from realblur_gan.data.io import read_image, write_image
from realblur_gan.evaluation.generalisation import (
    BenchmarkData,
    blur_score,
    colour_kept,
    format_table,
    held_out_pairs,
    run_benchmark,
)

REPO = Path(__file__).resolve().parent.parent


def scene(h: int, w: int, seed: int) -> torch.Tensor:
    """A photo-like image: smooth shading plus edges of several sizes."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    x = F.interpolate(blocks, scale_factor=8, mode="nearest")[..., :h, :w]
    return (0.7 * x + 0.3 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def box_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    weight = torch.ones(x.shape[1], 1, k, k) / (k * k)
    return F.conv2d(F.pad(x, [k // 2] * 4, mode="reflect"), weight, groups=x.shape[1])


def fake_data(root: Path) -> BenchmarkData:
    """The shared-data layout in miniature: 2 real-blur pairs, 2 held-out photos, 2 blurry."""
    for i in range(2):
        sharp = scene(48, 64, i)
        write_image(root / "gopro_pairs_other_scenes" / "sharp" / f"p{i}.png", sharp[0])
        write_image(root / "gopro_pairs_other_scenes" / "blur" / f"p{i}.png", box_blur(sharp, 5)[0])
        write_image(root / "natural" / "CBSD68" / f"h{i}.png", scene(40, 56, 10 + i)[0])
        write_image(root / "real_blur" / "set" / f"r{i}.png", box_blur(scene(64, 72, 20 + i), 7)[0])
    return BenchmarkData.from_root(root)


def test_blur_score_grows_with_blur_and_stays_in_range():
    x = scene(96, 96, 0)
    scores = [blur_score(x)] + [blur_score(box_blur(x, k)) for k in (3, 7, 15)]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 0.2
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert blur_score(torch.full((1, 3, 16, 16), 0.5)) == 1.0  # nothing to see is all blur
    assert blur_score(x[0]) == scores[0]  # (C, H, W) works too


def test_colour_kept_compares_channel_means_with_the_inputs_distance():
    sharp = torch.full((1, 3, 8, 8), 0.5)
    blurry = sharp + torch.tensor([0.01, 0.0, 0.0]).view(1, 3, 1, 1)
    # No farther from the sharp means than the input was (+0.002): kept.
    assert colour_kept(blurry, blurry, sharp) == (True, pytest.approx(-0.002, abs=1e-6))
    assert colour_kept(sharp, blurry, sharp)[0]
    shifted = blurry + torch.tensor([0.0, 0.003, 0.0]).view(1, 3, 1, 1)
    kept, excess = colour_kept(shifted, blurry, sharp)
    assert not kept and excess == pytest.approx(0.001, abs=1e-6)
    # Without a reference: within 0.01 of the input's means.
    assert colour_kept(blurry + 0.009, blurry, None)[0]
    assert not colour_kept(blurry + 0.011, blurry, None)[0]


def test_held_out_pairs_are_rendered_once_and_reproducibly(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    for i in range(3):
        write_image(photos / f"{i}.png", scene(40, 48, i)[0])
    first = held_out_pairs(photos, tmp_path / "a", seed=0)
    names = sorted(p.name for p in (first / "blur").iterdir())
    assert (
        names == sorted(p.name for p in (first / "sharp").iterdir()) == ["0.png", "1.png", "2.png"]
    )
    blurry = read_image(first / "blur" / "1.png")[0]
    assert (blurry - read_image(first / "sharp" / "1.png")[0]).abs().mean() > 0.01
    # The same photos and seed give the same pairs wherever they are rendered.
    second = held_out_pairs(photos, tmp_path / "b", seed=0)
    assert torch.equal(read_image(second / "blur" / "1.png")[0], blurry)
    # A matching cache is reused without blurring anything again.
    import realblur_gan.evaluation.generalisation as generalisation

    monkeypatch.setattr(generalisation, "held_out_camera", lambda: pytest.fail("re-rendered"))
    assert held_out_pairs(photos, tmp_path / "a", seed=0) == first


def test_benchmark_scores_every_part_and_writes_its_files(tmp_path):
    data = fake_data(tmp_path / "data")
    out = tmp_path / "out"

    def brighten(blurry: torch.Tensor) -> torch.Tensor:
        return (blurry + 0.05).clamp(0, 1)

    result = run_benchmark(brighten, data, out, grid_names=["set/r1", "missing"], map_iterations=6)
    parts = {p.part: p for p in result.parts}
    assert list(parts) == ["gopro", "synthetic", "real"]
    assert parts["gopro"].images == parts["synthetic"].images == parts["real"].images == 2
    # A global brightening loses PSNR and fails the colour check everywhere.
    for name in ("gopro", "synthetic"):
        p = parts[name]
        assert p.gain < 0 and p.worst_gain <= p.gain and p.colour_kept == 0
        assert p.psnr == pytest.approx(p.input_psnr + p.gain)
    assert parts["real"].colour_kept == 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 6 and {r["part"] for r in rows} == {"gopro", "synthetic", "real"}
    summary = json.loads((out / "summary.json").read_text())
    assert [s["part"] for s in summary] == ["gopro", "synthetic", "real"]
    # The grid: one row (the missing photo is skipped), input | model | MAP at 2x.
    grid = read_image(result.grid)[0]
    side = 2 * 64  # the crop is the photo's shorter side, shown at 2x
    assert grid.shape[-2:] == (side, 3 * side + 2 * 8)
    assert list((out / "cache" / "map").glob("set_r1-*.png"))
    table = format_table(result.parts, "bright")
    assert "| real blur, unseen scenes | 2 |" in table and "bright PSNR" in table


def test_identity_keeps_everything_and_gains_nothing(tmp_path):
    result = run_benchmark(
        lambda x: x, fake_data(tmp_path / "data"), tmp_path / "out", parts=["gopro", "real"]
    )
    for p in result.parts:
        assert p.colour_kept == p.images == 2
    gopro, real = result.parts
    assert gopro.gain == 0.0 and real.blur == real.input_blur


def test_the_command_scores_a_checkpoint_and_prints_one_table(tmp_path, capsys, tiny_net):
    from conftest import TINY_NET, save_net_checkpoint

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import bench_generalise
    finally:
        sys.path.pop(0)
    fake_data(tmp_path / "data")
    ckpt = save_net_checkpoint(tmp_path / "net.ckpt", tiny_net, TINY_NET)
    args = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    assert bench_generalise.main([*args, "--checkpoint", str(ckpt), "--map-iterations", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| camera blur, held-out photos | 2 |") == 1
    assert (tmp_path / "out" / "table.md").read_text().strip() in printed
    assert (tmp_path / "out" / "grid.png").is_file() is False  # no grid photo is in the data
    missing = bench_generalise.main([*args, "--checkpoint", str(tmp_path / "none.ckpt")])
    assert missing == 1 and "none.ckpt" in capsys.readouterr().err
