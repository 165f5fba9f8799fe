"""How blur sizes spread over their range: uniform in pixels, or log-uniform (every octave)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from data_tools import synthesize
from realblur_gan.camera import SIZE_LAWS, CameraPipelineBlur, RealisticBlur, SimpleBlur
from realblur_gan.camera.kernels import odd_sizes, shake_kernels
from realblur_gan.data.io import read_image, write_image

CPU = torch.device("cpu")


def sizes(law: str, n: int = 20000, low: int = 3, high: int = 95, seed: int = 0) -> torch.Tensor:
    return odd_sizes(n, low, high, torch.Generator().manual_seed(seed), CPU, law)


@pytest.mark.parametrize("law", SIZE_LAWS)
def test_sizes_are_odd_and_inside_the_range(law: str) -> None:
    s = sizes(law)
    assert s.dtype == torch.long and (s % 2 == 1).all()
    assert int(s.min()) == 3 and int(s.max()) == 95


def test_log_law_draws_every_octave_equally_often() -> None:
    """Log-uniform over [3, 96), five octaves: each holds ln 2 / ln 32 = 1/5 of the sizes.

    Rounding up to odd moves no size across an even octave boundary (6, 12, 24, 48).
    """
    s = sizes("log")
    for lo, hi in [(3, 6), (6, 12), (12, 24), (24, 48), (48, 96)]:
        assert float(((s >= lo) & (s < hi)).float().mean()) == pytest.approx(0.2, abs=0.015)
    # Uniform in pixels draws mild blur (up to 9 px: 4 of 47 odd sizes) far less often.
    mild = {law: float((sizes(law) <= 9).float().mean()) for law in SIZE_LAWS}
    assert mild["uniform"] == pytest.approx(4 / 47, abs=0.01)
    assert mild["log"] == pytest.approx(math.log(10 / 3) / math.log(32), abs=0.015)


def test_the_law_changes_only_the_sizes() -> None:
    """Both laws use one draw per size, so everything drawn after the sizes is unchanged."""
    gens = {law: torch.Generator().manual_seed(5) for law in SIZE_LAWS}
    for law, gen in gens.items():
        odd_sizes(64, 3, 95, gen, CPU, law)
    after = {law: torch.rand(8, generator=gen) for law, gen in gens.items()}
    torch.testing.assert_close(after["uniform"], after["log"], atol=0, rtol=0)


def test_uniform_law_is_the_default_and_keeps_its_draws() -> None:
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(500, generator=gen)
    expected = (3 + (u * 93).floor().clamp(max=92)).long() | 1
    torch.testing.assert_close(
        odd_sizes(500, 3, 95, torch.Generator().manual_seed(1), CPU), expected
    )


def support(kernels: torch.Tensor) -> torch.Tensor:
    """Side of the smallest square around each kernel's non-zero pixels, (N,)."""
    out = []
    for k in kernels:
        rows = torch.nonzero(k.sum(1) > 1e-6).flatten()
        cols = torch.nonzero(k.sum(0) > 1e-6).flatten()
        out.append(max(int(rows.max() - rows.min()), int(cols.max() - cols.min())) + 1)
    return torch.tensor(out, dtype=torch.float32)


def test_log_law_gives_shorter_shake_kernels() -> None:
    def draw(law: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(2)
        return support(shake_kernels(200, (3, 65), (0.0, 1.0), g, law))

    uniform, log = draw("uniform"), draw("log")
    assert float(log.median()) < 0.6 * float(uniform.median())
    assert float((log <= 9).float().mean()) > 2 * float((uniform <= 9).float().mean())


@pytest.mark.parametrize("blur_class", [SimpleBlur, RealisticBlur, CameraPipelineBlur])
def test_samplers_take_the_law_from_config(blur_class: type) -> None:
    cfg = OmegaConf.create(
        {
            "_target_": f"{blur_class.__module__}.{blur_class.__name__}",
            "kernel_size": [3, 65],
            "kernel_size_law": "log",
        }
    )
    blur = instantiate(cfg)
    assert blur.kernel_size_law == "log"
    images = torch.rand(16, 3, 72, 72)
    _, kernels = blur.sample(images, torch.Generator().manual_seed(0))
    _, plain = blur_class(kernel_size=(3, 65)).sample(images, torch.Generator().manual_seed(0))
    assert float(support(kernels).mean()) < float(support(plain).mean())


@pytest.mark.parametrize("blur_class", [SimpleBlur, RealisticBlur, CameraPipelineBlur])
def test_an_unknown_law_is_refused_with_the_choices(blur_class: type) -> None:
    with pytest.raises(ValueError, match="'uniform', 'log'"):
        blur_class(kernel_size_law="loguniform")


def test_synthesize_offers_every_law(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI spells the choices out (it imports no torch before parsing): they stay in step."""
    with pytest.raises(SystemExit):
        synthesize.main(["--help"])
    assert "--kernel-size-law {" + ",".join(SIZE_LAWS) + "}" in capsys.readouterr().out


def test_synthesize_takes_the_law(tmp_path: Path) -> None:
    src = tmp_path / "sharp"
    src.mkdir()
    write_image(src / "a.png", torch.rand(3, 48, 48))
    args = ["--blur", "camera", "--kernel-size", "5", "65", "--seed", "4"]
    out = tmp_path / "log"
    assert synthesize.main([str(src), str(out), *args, "--kernel-size-law", "log"]) == 0
    sharp = read_image(out / "sharp" / "a.png")[0]
    gen = torch.Generator().manual_seed(synthesize.seed_for(4, "a"))
    expected = CameraPipelineBlur(kernel_size=(5, 65), kernel_size_law="log")(sharp, gen)
    blur = read_image(out / "blur" / "a.png")[0]
    torch.testing.assert_close(blur, expected, atol=1 / 255, rtol=0)  # 8-bit PNG
    assert np.load(out / "kernels" / "a.npy").sum() == pytest.approx(1.0, abs=1e-5)
