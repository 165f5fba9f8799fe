"""On a CUDA GPU: inference in float32 and bf16, the commands with --device cuda, trainer=gpu and
the benchmark. Run by ``bash scripts/gpu_check.sh`` (``pytest -m gpu --device cuda``); skipped
where there is no CUDA device."""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path

import pytest
import torch

from realblur_gan.data.io import read_image, write_image
from realblur_gan.inference.runtime import RuntimeUnavailable, forward_runner
from realblur_gan.inference.tiling import deblur_image
from realblur_gan.nets import UNet

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def net() -> UNet:
    torch.manual_seed(0)
    return UNet(width=16, depth=3, tail_scale=1.0).eval()


@pytest.mark.gpu
@gpu
def test_deblur_image_on_cuda_equals_the_cpu_and_bf16_is_close(net: UNet) -> None:
    image = torch.rand(1, 3, 200, 300, generator=torch.Generator().manual_seed(1))
    on_cpu = deblur_image(net, image, tile=None, runtime="torch")
    gpu_net = copy.deepcopy(net).to(CUDA)
    for tile in (None, 128):
        got = deblur_image(gpu_net, image, tile=tile, overlap=32)
        assert got.device.type == "cpu"  # the result comes back to the image's device
        reference = deblur_image(net, image, tile=tile, overlap=32, runtime="torch")
        torch.testing.assert_close(got, reference, atol=1e-4, rtol=0)
    half = deblur_image(gpu_net, image.to(CUDA), tile=None, bf16=True)
    assert half.device.type == "cuda" and half.dtype == torch.float32
    assert 0 < float((half.cpu() - on_cpu).abs().max()) < 0.05
    with pytest.raises(RuntimeUnavailable, match="on the CPU only"):
        forward_runner(gpu_net, CUDA, "onnxruntime")


@pytest.mark.gpu
@gpu
def test_predict_and_evaluate_run_on_cuda(tmp_path: Path) -> None:
    from realblur_gan.evaluate import main as evaluate
    from realblur_gan.predict import main as predict

    gen = torch.Generator().manual_seed(2)
    for folder in ("blur", "sharp"):
        write_image(tmp_path / folder / "a.png", torch.rand(3, 96, 128, generator=gen))
    for extra in ([], ["--bf16"]):
        out = tmp_path / f"out{len(extra)}"
        args = [str(tmp_path / "blur"), "--out", str(out), "--device", "cuda", *extra]
        assert predict(args) == 0
        assert read_image(out / "a.png")[0].shape == (3, 96, 128)
    from realblur_gan.weights.model_zoo import packaged_model

    args = ["--sharp", str(tmp_path / "sharp"), "--blur", str(tmp_path / "blur")]
    args += ["--checkpoint", str(packaged_model()), "--device", "cuda", "--bf16", "--no-lpips"]
    assert evaluate([*args, "--out", str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "metrics.csv").is_file()


@pytest.mark.gpu
@gpu
def test_trainer_gpu_trains_every_stage_in_bf16(tiny_config) -> None:
    from realblur_gan.training.runner import run

    result = run(tiny_config("joint", "trainer=gpu", "logger=none"))
    assert result.metrics and all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


@pytest.mark.gpu
@gpu
def test_benchmark_runs_on_cuda() -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        cli = importlib.import_module("bench.cli")
    finally:
        sys.path.remove(str(SCRIPTS))
    argv = ["--quick", "--device", "cuda", "--parts", "train,switches,infer", "--sizes", "32"]
    result = cli.main([*argv, "--repeats", "1", "--val-batches", "0"])
    rows = [r for r in result["rows"] if "skipped" not in r]
    assert rows and all("error" not in r for r in rows), [r.get("error") for r in rows]
    assert {r["device"] for r in rows if r["part"] != "infer"} == {"cuda"}
    assert all(r["matmul_gflops"] > 0 for r in rows)


# Checked on every machine: what the GPU runs is configured as intended.


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_a_gpu_cuda_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    from realblur_gan.predict import main as predict

    write_image(tmp_path / "a.png", torch.rand(3, 16, 16))
    assert predict([str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device cuda: no CUDA device" in err and "\n" not in err


def test_trainer_gpu_config_is_one_gpu_in_bf16_channels_last(tiny_config) -> None:
    from realblur_gan.training.runner import stage_trainer_config

    cfg = tiny_config("joint", "trainer=gpu", "logger=none")
    trainer = stage_trainer_config(cfg, "joint")
    assert (trainer.accelerator, trainer.devices, trainer.precision) == ("gpu", 1, "bf16-mixed")
    assert cfg.perf.channels_last
