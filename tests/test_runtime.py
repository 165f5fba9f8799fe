"""Inference runtimes: every one gives torch's output within 1e-4; auto falls back to torch."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import realblur_gan.export
import realblur_gan.inference.onnx
from realblur_gan.inference import runtime
from realblur_gan.inference.runtime import RuntimeUnavailable, cpu_has_native_bf16, forward_runner
from realblur_gan.inference.tiling import deblur_image
from realblur_gan.nets import ResNetGenerator, UNet
from realblur_gan.nets.padding import pad_to_multiple

pytest.importorskip("onnxruntime")
CPU = torch.device("cpu")


def _plain(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """What deblur_image computed before the runtimes: one float32 NCHW torch pass."""
    h, w = image.shape[-2:]
    with torch.inference_mode():
        return net(pad_to_multiple(image, int(getattr(net, "stride", 1))))[..., :h, :w].clamp(0, 1)


@pytest.fixture
def nets() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    # A trained-looking body (not the near-identity of a fresh residual net).
    unet = UNet(width=8, depth=2, tail_scale=1.0).eval()
    return {
        "unet": unet,
        "resnet": ResNetGenerator(width=8, n_blocks=2, global_residual=False).eval(),
    }


@pytest.mark.parametrize("name", ["unet", "resnet"])
@pytest.mark.parametrize("which", ["auto", "torch", "onnxruntime"])
def test_every_runtime_reproduces_the_plain_pass(
    nets: dict[str, nn.Module], name: str, which: str
) -> None:
    net = nets[name]
    image = torch.rand(1, 3, 45, 70, generator=torch.Generator().manual_seed(1))
    got = deblur_image(net, image, tile=None, runtime=which)
    torch.testing.assert_close(got, _plain(net, image), atol=1e-4, rtol=0)
    tiled = deblur_image(net, image, tile=32, overlap=16, runtime=which)
    reference = deblur_image(net, image, tile=32, overlap=16, runtime="torch")
    torch.testing.assert_close(tiled, reference, atol=1e-4, rtol=0)
    ensemble = deblur_image(net, image, tile=None, self_ensemble=True, runtime=which)
    reference = deblur_image(net, image, tile=None, self_ensemble=True, runtime="torch")
    torch.testing.assert_close(ensemble, reference, atol=1e-4, rtol=0)


def test_one_export_per_net_until_its_weights_change(
    nets: dict[str, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = []
    onnx = realblur_gan.inference.onnx
    export = onnx.onnx_model_bytes
    monkeypatch.setattr(onnx, "onnx_model_bytes", lambda net: exports.append(1) or export(net))
    net = nets["unet"]
    image = torch.rand(1, 3, 32, 32)
    for _ in range(3):
        deblur_image(net, image, tile=None)
    assert len(exports) == 1
    with torch.no_grad():
        net.tail.bias.add_(0.1)  # an optimiser step, a loaded state dict: in place
    after = deblur_image(net, image, tile=None)
    assert len(exports) == 2
    torch.testing.assert_close(after, _plain(net, image), atol=1e-4, rtol=0)


class BakedWidth(nn.Module):
    """Reads its input's width as a Python number: the ONNX trace keeps the export's width."""

    stride = 1
    image_channels = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (float(x.shape[-1]) / 200.0)


class NoOnnx(nn.Module):
    """An operator the ONNX exporter does not know."""

    image_channels = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x), s=x.shape[-2:])


@pytest.mark.parametrize("net", [BakedWidth(), NoOnnx()], ids=["wrong_at_other_sizes", "export"])
def test_auto_falls_back_to_torch_and_explicit_onnxruntime_says_why(
    net: nn.Module, caplog: pytest.LogCaptureFixture
) -> None:
    image = torch.rand(1, 3, 20, 50)
    with caplog.at_level(logging.INFO, logger="realblur_gan.inference.runtime"):
        got = deblur_image(net, image, tile=None)
    torch.testing.assert_close(got, _plain(net, image), atol=1e-5, rtol=0)
    assert "running torch" in caplog.text
    with pytest.raises(RuntimeUnavailable, match=r"--runtime onnxruntime: .*--runtime torch"):
        forward_runner(net, CPU, "onnxruntime")


def test_without_onnxruntime_auto_is_torch(
    nets: dict[str, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_onnxruntime", lambda: None)
    image = torch.rand(1, 3, 24, 40)
    torch.testing.assert_close(
        deblur_image(nets["unet"], image, tile=None), _plain(nets["unet"], image), atol=1e-5, rtol=0
    )
    with pytest.raises(RuntimeUnavailable, match="not installed"):
        forward_runner(nets["unet"], CPU, "onnxruntime")
    with pytest.raises(RuntimeUnavailable, match="choose from auto, torch, onnxruntime"):
        forward_runner(nets["unet"], CPU, "tensorrt")


def test_bf16_on_the_cpu(
    nets: dict[str, nn.Module], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    net, image = nets["unet"], torch.rand(1, 3, 32, 48)
    native = cpu_has_native_bf16()
    # Where bfloat16 would really run, onnxruntime (float32 only) is refused; whatever this CPU.
    with monkeypatch.context() as patch:
        patch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
        with pytest.raises(RuntimeUnavailable, match="float32 on the CPU only"):
            forward_runner(net, CPU, "onnxruntime", bf16=True)
    if native:
        # bfloat16 arithmetic: close to float32, not equal.
        got = deblur_image(net, image, tile=None, bf16=True)
        diff = float((got - _plain(net, image)).abs().max())
        assert 0 < diff < 0.05
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="realblur_gan.inference.runtime"):
        got = deblur_image(net, image, tile=None, bf16=True)
    assert "no native bfloat16" in caplog.text
    torch.testing.assert_close(got, _plain(net, image), atol=1e-4, rtol=0)


def test_inference_commands_do_not_import_lightning() -> None:
    """Lightning costs ~2 s and ~0.25 GB resident at import: realblur-deblur and -evaluate load
    and run a generator without it (a 12 MP photo then fits in 1.5 GB, bench_predict.py)."""
    import subprocess
    import sys

    code = (
        "import sys; import realblur_gan.predict, realblur_gan.evaluate; "
        "from realblur_gan.weights.checkpoints import load_generator; "
        "from realblur_gan.weights.model_zoo import packaged_model; "
        "load_generator(packaged_model()); print('lightning' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "False"
    from realblur_gan.weights import checkpoints

    assert checkpoints.AtomicCheckpointIO.__name__ == "AtomicCheckpointIO"  # made on first use


@pytest.mark.parametrize(("which", "calls"), [("torch", 4), ("onnxruntime", 1)])
def test_tile_auto_follows_the_runtime(
    nets: dict[str, nn.Module], monkeypatch: pytest.MonkeyPatch, which: str, calls: int
) -> None:
    """A 600x600 image: one pass in onnxruntime (faster whole up to 1 MP), 512 px tiles in
    torch on the CPU (faster tiled); above 1 MP both tile."""
    import realblur_gan.inference.tiling as inference

    seen = []
    make = inference.forward_runner

    def counting(*args: object, **kwargs: object) -> runtime.Runner:
        run = make(*args, **kwargs)
        return runtime.Runner(
            lambda x: seen.append(x.shape) or run(x), run.name, run.one_pass_pixels
        )

    monkeypatch.setattr(inference, "forward_runner", counting)
    deblur_image(nets["unet"], torch.rand(1, 3, 600, 600), runtime=which)
    assert len(seen) == calls
    seen.clear()
    deblur_image(nets["unet"], torch.rand(1, 3, 1032, 1032), runtime=which)
    assert len(seen) == 9 and max(s[-1] for s in seen) <= 512
