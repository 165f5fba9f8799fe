"""The band analysis (``scripts/band_errors.py``): bands that add up, errors that locate."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from conftest import load_script
from PIL import Image


@pytest.fixture(scope="module")
def bands_script():
    return load_script("band_errors")


def test_bands_sum_back_to_the_image(bands_script):
    x = torch.rand(1, 3, 48, 40)
    parts = bands_script.bands(x, (1.0, 4.0))
    assert len(parts) == 3
    torch.testing.assert_close(sum(parts), x)


def test_blur_takes_fine_energy_and_a_perfect_output_has_no_error(bands_script):
    torch.manual_seed(0)
    sharp = torch.rand(1, 3, 64, 64)
    blur = bands_script.lowpass(sharp, 2.0)
    row = bands_script.band_report(sharp, blur, sharp)
    assert row["band0_energy_in"] < 0.1 * row["band0_energy_sharp"]
    assert row["band0_energy_out"] == pytest.approx(row["band0_energy_sharp"])
    assert all(row[f"band{i}_err_out"] == 0 for i in range(3))
    assert row["band0_err_in"] > 0 and row["band1_err_in"] > 0
    # A brightness change lives in the coarsest band only.
    shifted = bands_script.band_report(sharp + 0.05, sharp, sharp)
    assert shifted["band2_err_out"] == pytest.approx(0.05**2 * 1e4, rel=1e-3)
    assert shifted["band0_err_out"] < 1e-6 and "band2_energy_out" not in shifted


def test_cli_identity_writes_equal_input_and_output_errors(bands_script, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (tmp_path / sub).mkdir()
    for name in ("a", "b"):
        img = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "sharp" / f"{name}.png")
        Image.fromarray(np.roll(img, 2, axis=1)).save(tmp_path / "blur" / f"{name}.png")
    out = tmp_path / "bands.csv"
    assert bands_script.main([str(tmp_path), "--identity", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["image"] for r in rows] == ["a", "b"]
    for r in rows:
        for i in range(3):
            assert float(r[f"band{i}_err_in"]) == float(r[f"band{i}_err_out"]) > 0
    assert "| a |" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(bands_script, tmp_path, capsys):
    assert bands_script.main([str(tmp_path), "--identity"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("band_errors: ") and "\n" not in err
    assert bands_script.main([str(tmp_path), "--identity", "--sigmas", "4,1"]) == 2
    assert "--sigmas" in capsys.readouterr().err
